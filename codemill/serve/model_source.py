"""Where the served model comes from: a local directory, an ``s3://`` prefix, or the MLflow registry.

Every form ends as a local Hugging Face directory (``config.json`` + weights + tokenizer)
that the backends load. Remote models are downloaded into ``cache_dir`` (``run_server``
passes a temporary directory that lives as long as the server when none is set). A
problem is an ``InputError``/``StorageError`` naming the reference, raised before the
server starts listening.
"""

from __future__ import annotations

import hashlib
import os

from codemill import io
from codemill.serve import registry
from codemill.stage import InputError


def _download_dir(cache_dir: str, uri: str) -> str:
    # One folder per reference, so a cache shared by several versions never mixes their files.
    return os.path.join(cache_dir, hashlib.sha256(uri.encode()).hexdigest()[:16])


def fetch_model(uri: str, cache_dir: str, tracking_uri: str = "") -> str:
    """A local directory holding the model ``uri`` names (remote models are downloaded under ``cache_dir``)."""
    if registry.is_models_uri(uri):
        client = registry.client_for(tracking_uri)
        local = registry.download_version(client, uri, _download_dir(cache_dir, uri))
    elif io.is_s3(uri):
        local = io.download_dir(uri, _download_dir(cache_dir, uri))
    else:
        local = io.local_path(uri)
        if not os.path.isdir(local):
            raise InputError(f"{uri}: no such model directory")
    if not os.path.isfile(os.path.join(local, "config.json")):
        raise InputError(f"{uri}: not a Hugging Face model directory (no config.json)")
    return local

"""The base model: a local folder, ``s3://``, ``models:/NAME@ALIAS`` or a Hugging Face hub id.

The first three resolve through :func:`codemill.serve.model_source.fetch_model`, the same
resolver serving uses (S3 through ``codemill.io``, the registry through MLflow). A hub id
(``deepseek-ai/deepseek-coder-6.7b-base``) that is not a local path goes to
``from_pretrained`` as it is, which downloads it where a hub is reachable. A name of that
shape is as often a mistyped local path, so one that is neither in the local Hugging Face
cache nor reachable (``HF_HUB_OFFLINE`` set, or the hub's host refusing a 3 s connection)
ends at once with one line instead of a minute of download retries (docs/sft.md).
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlparse

from codemill import io
from codemill.serve import registry
from codemill.serve.model_source import fetch_model
from codemill.stage import InputError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_TIMEOUT_S = 3.0


def is_hub_id(uri: str) -> bool:
    return bool(_HUB_ID.match(uri)) and not os.path.exists(uri)


def resolve(uri: str, cache_dir: str, tracking_uri: str = "") -> str:
    """What ``from_pretrained`` should load: a local folder, or a hub id."""
    if not io.is_s3(uri) and not registry.is_models_uri(uri) and is_hub_id(uri):
        return hub_source(uri)
    return fetch_model(uri, cache_dir, tracking_uri)


def hub_source(uri: str) -> str:
    """``uri`` when ``from_pretrained`` can get it: cached locally, or the hub is reachable."""
    if _cached(uri):
        return uri
    why = "HF_HUB_OFFLINE is set" if _offline() else unreachable(_hub_address())
    if why:
        raise InputError(
            f"{uri}: not a local folder, and as a hub id it is not cached and could not be reached "
            f"({why}); check the path, or the network and HF_ENDPOINT"
        )
    return uri


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not a valid repo id (HFValidationError)
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_address() -> tuple[str, int]:
    """The host a download connects to first: the HTTPS proxy if one is set, else the hub endpoint."""
    url = (
        os.environ.get("HTTPS_PROXY")
        or os.environ.get("https_proxy")
        or os.environ.get("HF_ENDPOINT")
        or "https://huggingface.co"
    )
    parsed = urlparse(url if "://" in url else f"http://{url}")
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def unreachable(address: tuple[str, int], timeout: float = PROBE_TIMEOUT_S) -> str:
    """Why a TCP connection to ``address`` fails within ``timeout`` seconds; empty when it connects."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return ""
    except OSError as e:
        return f"{address[0]}:{address[1]}: {e.strerror or e}"

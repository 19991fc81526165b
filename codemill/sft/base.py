"""The base model: a local folder, ``s3://``, ``models:/NAME@ALIAS`` or a Hugging Face hub id.

The first three resolve through :func:`codemill.serve.model_source.fetch_model`, the same
resolver serving uses (S3 through ``codemill.io``, the registry through MLflow). A hub id
(``deepseek-ai/deepseek-coder-6.7b-base``) that is not a local path goes to
``from_pretrained`` as it is, which downloads it where a hub is reachable.
"""

from __future__ import annotations

import os
import re

from codemill import io
from codemill.serve import registry
from codemill.serve.model_source import fetch_model

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(uri: str) -> bool:
    return bool(_HUB_ID.match(uri)) and not os.path.exists(uri)


def resolve(uri: str, cache_dir: str, tracking_uri: str = "") -> str:
    """What ``from_pretrained`` should load: a local folder, or a hub id."""
    if not io.is_s3(uri) and not registry.is_models_uri(uri) and is_hub_id(uri):
        return uri
    return fetch_model(uri, cache_dir, tracking_uri)

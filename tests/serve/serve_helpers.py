"""Constants and helpers the serve tests share (the fixtures live in conftest.py)."""

from __future__ import annotations

import shutil

import httpx
from prometheus_client.parser import text_string_to_metric_families

API_KEY = "test-key-123"
SERVER_CONFIG = dict(
    api_key=API_KEY,
    max_tokens_cap=64,
    n_cap=4,
    max_body_bytes=16_384,
    max_batch=32,
    batch_wait_ms=10.0,
    access_log=False,
)


def new_mlflow_store(folder, template: str) -> str:
    """A fresh tracking + registry store in ``folder`` (artifacts go beside it); returns its URI."""
    shutil.copy(template, folder / "mlflow.db")
    return f"sqlite:///{folder}/mlflow.db"


def metric_samples(client: httpx.Client) -> dict[tuple[str, tuple], float]:
    """/metrics parsed as Prometheus text: (sample name, sorted labels) -> value."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples: dict, name: str, **labels) -> float:
    want = {"model_name": "codemill", **labels}
    return samples.get((name, tuple(sorted(want.items()))), 0.0)

"""Serve fixtures: one real server on a free localhost port shared by the HTTP tests, and
an empty MLflow store to copy.

The server runs the tiny Llama from tests/conftest.py with an API key and small caps so
every limit is cheap to hit. Tests that read metrics compare before/after values, since
the server is shared.
"""

from __future__ import annotations

import httpx
import pytest

from codemill.serve.config import ServeConfig
from codemill.serve.server import BackgroundServer
from tests.serve.serve_helpers import API_KEY, SERVER_CONFIG


@pytest.fixture(scope="session")
def server(tiny_model_dir):
    with BackgroundServer(ServeConfig(**SERVER_CONFIG), tiny_model_dir) as s:
        yield s


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> str:
    """An empty, migrated MLflow sqlite store; copying it is instant, creating one takes seconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return str(path)


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
        yield c

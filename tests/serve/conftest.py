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


CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tiny_model_dir, tmp_path_factory) -> str:
    """The tiny Llama with ChatML: <|im_start|>/<|im_end|> as special tokens and the ChatML chat template."""
    import torch
    from tokenizers import AddedToken
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(tmp_path_factory.mktemp("tiny-chat-model"))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_tokens(
        [AddedToken("<|im_start|>", special=True), AddedToken("<|im_end|>", special=True)], special_tokens=True
    )
    tok.chat_template = CHATML_TEMPLATE
    tok.save_pretrained(path)
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.save_pretrained(path)
    model.generation_config.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def chat_server(tiny_chat_model_dir):
    with BackgroundServer(ServeConfig(**SERVER_CONFIG), tiny_chat_model_dir) as s:
        yield s

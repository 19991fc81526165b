"""Both backends implement the Engine protocol the server is typed against, member for member."""

import inspect

from codemill.serve.batching import Batcher
from codemill.serve.engine import BatchHooks, Engine
from codemill.serve.hf_backend import HFBackend
from codemill.serve.metrics import ServerMetrics
from codemill.serve.vllm_backend import VLLMEngine

MEMBERS = ("load", "submit", "close")


def _signature(cls, name: str) -> list[str]:
    return list(inspect.signature(getattr(cls, name)).parameters)


def test_batcher_and_vllm_engine_are_engines(tiny_model_dir):
    metrics = ServerMetrics("codemill")
    batcher = Batcher(HFBackend(tiny_model_dir), metrics)
    assert isinstance(batcher, Engine) and isinstance(batcher, BatchHooks)
    assert isinstance(VLLMEngine(tiny_model_dir, metrics), Engine)
    for cls in (Batcher, VLLMEngine):
        for name in MEMBERS:
            assert _signature(cls, name) == _signature(Engine, name), (cls.__name__, name)


def test_the_running_server_holds_an_engine(server):
    engine = server.state.engine
    assert isinstance(engine, Engine)
    assert engine.context_length == 512 and engine.tokenizer is not None


def test_something_else_is_not_an_engine():
    assert not isinstance(HFBackend("unused"), Engine)  # the decode loop alone has no submit()

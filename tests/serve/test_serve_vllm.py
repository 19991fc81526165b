"""The vllm backend behind the same HTTP API, with a stand-in for the vllm package (not installed here).

The stand-in engine answers the way vLLM's AsyncLLMEngine does: an async generator of
RequestOutputs with cumulative text per choice. What is under test is codemill's side:
FIM prompts reach the engine as codemill-built token ids (vLLM's own server rejects
``suffix``), sampling parameters are passed through, cumulative text becomes deltas.
"""

import asyncio
import contextlib
import importlib.machinery
import json
import sys
import types
from types import SimpleNamespace

import httpx
import pytest
from transformers import AutoTokenizer

from codemill.serve import vllm_backend
from codemill.serve.config import ServeConfig
from codemill.serve.prompting import PromptBuilder
from codemill.serve.server import BackgroundServer


class FakeAsyncLLMEngine:
    instances: list = []

    def __init__(self, args):
        self.args, self.calls, self.aborted, self.shut_down = args, [], [], False

    @classmethod
    def from_engine_args(cls, args):
        cls.instances.append(cls(args))
        return cls.instances[-1]

    async def generate(self, prompt, params, request_id):
        self.calls.append((prompt, params))
        steps = params.max_tokens
        ids = prompt["prompt_token_ids"]
        prompt_logprobs = None  # as vLLM: the first prompt token has none; {token: Logprob} for the others
        if getattr(params, "prompt_logprobs", None) is not None:
            prompt_logprobs = [None] + [{t: SimpleNamespace(logprob=-0.25, rank=1)} for t in ids[1:]]
        for step in range(1, steps + 1):
            logprobs = None
            if getattr(params, "logprobs", None) is not None:
                logprobs = [
                    {k: SimpleNamespace(logprob=-0.1 * (k + 1), rank=2), 99: SimpleNamespace(logprob=-0.01, rank=1)}
                    for k in range(step)
                ]
            outputs = [
                SimpleNamespace(
                    index=i,
                    text="".join(f" c{i}t{k}" for k in range(step)),
                    token_ids=list(range(step)),
                    logprobs=logprobs,
                    finish_reason="length" if step == steps else None,
                )
                for i in range(params.n)
            ]
            yield SimpleNamespace(
                outputs=outputs, prompt_token_ids=ids, prompt_logprobs=prompt_logprobs, finished=step == steps
            )
            await asyncio.sleep(0)

    async def abort(self, request_id):
        self.aborted.append(request_id)

    def shutdown(self):
        self.shut_down = True


@contextlib.contextmanager
def fake_vllm_server(model_dir: str):
    fake = types.ModuleType("vllm")
    fake.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    fake.AsyncLLMEngine = FakeAsyncLLMEngine
    fake.AsyncEngineArgs = lambda **kw: SimpleNamespace(**kw)
    fake.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    saved = sys.modules.get("vllm")
    sys.modules["vllm"] = fake
    try:
        with BackgroundServer(ServeConfig(backend="vllm", access_log=False), model_dir) as server:
            yield server, FakeAsyncLLMEngine.instances[-1]
    finally:
        sys.modules.pop("vllm")
        if saved is not None:
            sys.modules["vllm"] = saved


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir):
    with fake_vllm_server(tiny_model_dir) as served:
        yield served


def test_engine_is_built_for_the_model_dir(vllm_server, tiny_model_dir):
    _, engine = vllm_server
    args = engine.args
    assert (args.model, args.tokenizer, args.max_model_len) == (tiny_model_dir, tiny_model_dir, 512)


def test_fim_prompt_reaches_vllm_as_codemill_token_ids(vllm_server, tiny_model_dir):
    server, engine = vllm_server
    body = {
        "prompt": "def f(x):\n    ",
        "suffix": "\n    return y\n",
        "max_tokens": 3,
        "n": 2,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 5,
        "stop": ["\n\n"],
    }
    data = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    prompt, params = engine.calls[-1]
    expected = PromptBuilder(AutoTokenizer.from_pretrained(tiny_model_dir)).build(body["prompt"], body["suffix"])
    assert prompt == {"prompt_token_ids": expected}
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.stop, params.seed) == (
        2,
        0.5,
        0.9,
        3,
        ["\n\n"],
        5,
    )
    assert [c["text"] for c in data["choices"]] == [" c0t0 c0t1 c0t2", " c1t0 c1t1 c1t2"]
    assert [c["finish_reason"] for c in data["choices"]] == ["length", "length"]
    assert data["usage"] == {"prompt_tokens": len(expected), "completion_tokens": 6, "total_tokens": len(expected) + 6}


def test_streaming_turns_cumulative_text_into_deltas(vllm_server):
    server, _ = vllm_server
    body = {"prompt": "x", "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=60) as resp:
        lines = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    choices = [json.loads(x)["choices"][0] for x in lines[:-1]]
    assert [c["text"] for c in choices if c["text"]] == [" c0t0", " c0t1", " c0t2", " c0t3"]
    assert choices[-1]["finish_reason"] == "length"


def test_vllm_backend_without_vllm_fails_to_load(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: False)
    server = BackgroundServer(ServeConfig(backend="vllm", access_log=False), tiny_model_dir)
    with pytest.raises(RuntimeError, match="the vllm package is not installed"):
        server.start()
    assert httpx.get(f"{server.url}/ready").json()["status"] == "failed"
    assert httpx.get(f"{server.url}/health").status_code == 200
    server.stop()


def test_chat_reaches_vllm_as_the_chat_templates_token_ids(tiny_chat_model_dir):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    with fake_vllm_server(tiny_chat_model_dir) as (server, engine):
        body = {"messages": messages, "max_tokens": 3, "n": 2, "temperature": 0.5, "seed": 3, "stop": ["##"]}
        data = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60).json()
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json={**body, "n": 1, "stream": True}, timeout=60
        ) as resp:
            lines = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    prompt, params = engine.calls[-2]  # before it: the warm-up; after it: the stream
    tok = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    assert prompt == {"prompt_token_ids": PromptBuilder(tok).chat(messages)}
    assert (params.n, params.temperature, params.max_tokens, params.stop, params.seed) == (2, 0.5, 3, ["##"], 3)
    assert params.stop_token_ids == [tok.convert_tokens_to_ids("<|im_end|>")]  # chat ends at the end of turn
    assert [c["message"]["content"] for c in data["choices"]] == [" c0t0 c0t1 c0t2", " c1t0 c1t1 c1t2"]
    assert data["object"] == "chat.completion"
    deltas = [json.loads(x)["choices"][0]["delta"] for x in lines[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""} and lines[-1] == "[DONE]"
    assert "".join(d.get("content", "") for d in deltas) == " c0t0 c0t1 c0t2"


def test_logprobs_and_echo_pass_through_vllm(vllm_server):
    server, engine = vllm_server
    body = {"prompt": [[5, 6, 7]], "max_tokens": 2, "logprobs": 1, "echo": True, "temperature": 0}
    choice = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()["choices"][0]
    _, params = engine.calls[-1]
    assert (params.logprobs, params.prompt_logprobs) == (1, 1)
    lp = choice["logprobs"]
    assert lp["token_logprobs"] == [None, -0.25, -0.25, pytest.approx(-0.1), pytest.approx(-0.2)]
    assert lp["top_logprobs"][0] is None and len(lp["top_logprobs"][3]) == 2  # the best (id 99) and the token
    assert max(lp["top_logprobs"][3].values()) == pytest.approx(-0.01)


def test_echo_with_zero_max_tokens_through_vllm_drops_the_one_token_vllm_must_make(vllm_server):
    server, engine = vllm_server
    body = {"prompt": [[5, 6, 7]], "max_tokens": 0, "logprobs": 1, "echo": True, "n": 2}
    data = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    _, params = engine.calls[-1]
    assert (params.max_tokens, params.prompt_logprobs) == (1, 1)  # vLLM needs max_tokens >= 1
    assert [c["logprobs"]["token_logprobs"] for c in data["choices"]] == [[None, -0.25, -0.25]] * 2
    assert all(" c" not in c["text"] and c["finish_reason"] == "length" for c in data["choices"])
    assert data["usage"]["completion_tokens"] == 0

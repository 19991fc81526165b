"""Completions over real HTTP against a running server: plain, FIM, streaming, stop, seed, n.

Greedy answers are checked against ``model.generate`` on the same prompt ids, so the
batched KV-cache loop, the FIM prompt layout and the detokenizer are all held to the
reference implementation.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.serve.prompting import PromptBuilder


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    builder = PromptBuilder(tok)

    def greedy(prompt: str, max_tokens: int, suffix: str | None = None) -> str:
        ids = torch.tensor([builder.build(prompt, suffix)])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens, do_sample=False)
        return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    return greedy


def complete(client, **body) -> dict:
    resp = client.post("/v1/completions", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def stream(client, **body) -> list:
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]


def test_completion_shape_and_usage(client, tiny_model_dir):
    data = complete(client, prompt="def add(a, b):", max_tokens=12, temperature=0)
    assert data["object"] == "text_completion" and data["model"] == "codemill" and data["id"].startswith("cmpl-")
    (choice,) = data["choices"]
    assert choice["index"] == 0 and isinstance(choice["text"], str)
    assert choice["finish_reason"] in ("stop", "length")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt_tokens = len(tokenizer.encode("def add(a, b):", add_special_tokens=False))
    usage = data["usage"]
    assert usage["prompt_tokens"] == prompt_tokens
    assert 1 <= usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    if choice["finish_reason"] == "length":
        assert usage["completion_tokens"] == 12


def test_concurrent_greedy_matches_generate(client, reference):
    cases = [
        ("def add(a, b):", 10),
        ("import os\nimport sys\n\nclass Config:\n", 16),
        ("x", 5),
        ("for i in range(10):\n    print(i", 12),
        ("# compute the mean\n", 7),
        ("return", 3),
    ]
    with ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(lambda c: complete(client, prompt=c[0], max_tokens=c[1], temperature=0), cases))
    for (prompt, n), data in zip(cases, answers):
        assert data["choices"][0]["text"] == reference(prompt, n), prompt


def test_fim_with_suffix_matches_generate_on_psm_prompt(client, reference):
    prefix, suffix = "def area(r):\n    ", "\n    return result\n"
    data = complete(client, prompt=prefix, suffix=suffix, max_tokens=10, temperature=0)
    assert data["choices"][0]["text"] == reference(prefix, 10, suffix=suffix)
    plain = complete(client, prompt=prefix, max_tokens=1, temperature=0)
    assert data["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 3  # suffix + 3 sentinels


def test_streaming_chunks_rebuild_the_completion(client):
    body = dict(prompt="import json\n", max_tokens=14, temperature=0)
    whole = complete(client, **body)["choices"][0]
    events = stream(client, **body, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] >= 1
    choices = [c["choices"][0] for c in chunks[:-1]]
    assert "".join(c["text"] for c in choices) == whole["text"]
    assert [c["finish_reason"] for c in choices if c["finish_reason"]] == [whole["finish_reason"]]
    assert choices[-1]["finish_reason"] is not None


def test_stop_sequence_cuts_the_output(client):
    body = dict(prompt="def main():\n", max_tokens=20, temperature=0.9, seed=11)
    full = complete(client, **body)["choices"][0]["text"]
    assert len(full) >= 6
    stop = full[3:6]
    cut = complete(client, **body, stop=[stop])["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["text"] == full[: full.index(stop)]


def test_seed_reproduces_samples_and_n_gives_distinct_choices(client):
    body = dict(prompt="class Tree:\n", max_tokens=12, temperature=1.0, n=3, seed=1234)
    first, second = complete(client, **body), complete(client, **body)
    texts = [c["text"] for c in first["choices"]]
    assert [c["index"] for c in first["choices"]] == [0, 1, 2]
    assert texts == [c["text"] for c in second["choices"]]
    assert len(set(texts)) > 1
    other = complete(client, **{**body, "seed": 99})
    assert [c["text"] for c in other["choices"]] != texts


def test_models_lists_the_served_model(client):
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["codemill"]
    assert data["data"][0]["max_model_len"] == 512


def test_health_and_ready(server):
    import httpx

    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").json()["status"] == "ready"

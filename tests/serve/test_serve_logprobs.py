"""`logprobs`, `echo` and `prompt` arrays: the requests lm-evaluation-harness's `local-completions` sends.

Every log-probability is held to a plain transformers forward pass on the same ids
(float32 on CPU, within 1e-3). The payloads are the ones lm-eval builds
(`LocalCompletionsAPI._create_payload`): loglikelihood as token ids with `echo`,
`logprobs: 1`, `max_tokens: 1`; generation with a task's `until` list plus the EOS string.
"""

import json
from operator import itemgetter

import openai
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.serve.serve_helpers import API_KEY

CONTEXT = "def add(a, b):\n"
CONTINUATIONS = ["    return a + b\n", "    pass\n"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def forward_logprobs(model, ids: list[int]) -> torch.Tensor:
    """log_softmax of the model's logits at every position of ``ids``, [len(ids), vocab]."""
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def lm_eval_parse_logprobs(out: dict, ctxlens: list[int]) -> list[tuple[float, bool]]:
    """lm-eval's `LocalCompletionsAPI.parse_logprobs`, as it reads a response."""
    res = []
    for choice, ctxlen in zip(sorted(out["choices"], key=itemgetter("index")), ctxlens):
        logprobs = sum(choice["logprobs"]["token_logprobs"][ctxlen:-1])
        tops = choice["logprobs"]["top_logprobs"][ctxlen:-1]
        tokens = choice["logprobs"]["token_logprobs"][ctxlen:-1]
        res.append((logprobs, all(tok == max(top.values()) for tok, top in zip(tokens, tops))))
    return res


def test_lm_eval_loglikelihood_request_equals_the_forward_pass(client, model_and_tokenizer):
    model, tok = model_and_tokenizer
    context = tok.encode(CONTEXT, add_special_tokens=False)
    inputs = [context + tok.encode(c, add_special_tokens=False) for c in CONTINUATIONS]
    payload = {
        "model": "codemill",
        "prompt": inputs,
        "temperature": 0,
        "max_tokens": 1,
        "logprobs": 1,
        "seed": 1234,
        "echo": True,
    }
    resp = client.post("/v1/completions", json=payload)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert [c["index"] for c in out["choices"]] == [0, 1]
    for ids, choice in zip(inputs, out["choices"]):
        lp = choice["logprobs"]
        assert len(lp["token_logprobs"]) == len(ids) + 1  # the prompt, then the one generated token
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        reference = forward_logprobs(model, ids)
        expected = [reference[t - 1, ids[t]].item() for t in range(1, len(ids))]
        assert lp["token_logprobs"][1 : len(ids)] == pytest.approx(expected, abs=1e-3)
        assert lp["token_logprobs"][-1] == pytest.approx(reference[-1].max().item(), abs=1e-3)  # greedy
        assert lp["tokens"][: len(ids)] == [tok.decode([t]) for t in ids]
        assert choice["text"].startswith(tok.decode(ids))
    assert out["usage"]["prompt_tokens"] == sum(len(ids) for ids in inputs)

    for (score, greedy), ids in zip(lm_eval_parse_logprobs(out, [len(context)] * 2), inputs):
        reference = forward_logprobs(model, ids)
        positions = range(len(context), len(ids))
        assert score == pytest.approx(sum(reference[t - 1, ids[t]].item() for t in positions), abs=1e-3)
        assert greedy == all(reference[t - 1].argmax().item() == ids[t] for t in positions)


def test_lm_eval_generate_until_request(client, model_and_tokenizer):
    model, tok = model_and_tokenizer
    until = ["\nclass", "\ndef", "\n#", "\nif", "\nprint", tok.eos_token]  # humaneval's until + the EOS string
    ids = tok.encode("import os\n", add_special_tokens=False)
    payload = {"prompt": [ids], "model": "codemill", "max_tokens": 24, "temperature": 0, "stop": until, "seed": 1234}
    out = client.post("/v1/completions", json=payload)
    assert out.status_code == 200, out.text
    with torch.no_grad():
        generated = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)[0, len(ids) :]
    expected = tok.decode(generated, skip_special_tokens=True)
    for stop in until:
        expected = expected.split(stop)[0]
    assert out.json()["choices"][0]["text"] == expected


def test_generated_tokens_logprobs_and_top_alternatives(client, model_and_tokenizer):
    model, tok = model_and_tokenizer
    prompt = tok.encode(CONTEXT, add_special_tokens=False)
    with torch.no_grad():
        generated = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False)[0, len(prompt) :].tolist()
    resp = client.post("/v1/completions", json={"prompt": CONTEXT, "max_tokens": 6, "temperature": 0, "logprobs": 3})
    choice = resp.json()["choices"][0]
    lp = choice["logprobs"]
    assert lp["tokens"] == [tok.decode([t]) for t in generated]
    reference = forward_logprobs(model, prompt + generated)
    for step, (token_lp, top) in enumerate(zip(lp["token_logprobs"], lp["top_logprobs"])):
        row = reference[len(prompt) + step - 1]
        assert token_lp == pytest.approx(row[generated[step]].item(), abs=1e-3)
        best = row.topk(3)
        expected_top = {tok.decode([i]): v for i, v in zip(best.indices.tolist(), best.values.tolist())}
        assert top == pytest.approx(expected_top, abs=1e-3)  # greedy: the token is the best of the 3
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(len(generated))]

    sampled = client.post(
        "/v1/completions", json={"prompt": CONTEXT, "max_tokens": 6, "temperature": 1.5, "seed": 3, "logprobs": 2}
    ).json()["choices"][0]["logprobs"]
    for token, token_lp, top in zip(sampled["tokens"], sampled["token_logprobs"], sampled["top_logprobs"]):
        assert len(top) in (2, 3) and top[token] == token_lp  # the 2 best, plus the sampled token if not one
        assert token_lp <= max(top.values())


def test_prompt_arrays_are_answered_prompt_major(client):
    def texts(prompt):
        body = {"prompt": prompt, "max_tokens": 5, "temperature": 0.8, "seed": 9, "n": 2}
        data = client.post("/v1/completions", json=body).json()
        assert [c["index"] for c in data["choices"]] == list(range(len(data["choices"])))
        return [c["text"] for c in data["choices"]], data["usage"]

    both, usage = texts(["def f():", "class A:"])
    first, first_usage = texts("def f():")
    second, second_usage = texts("class A:")
    assert both == first + second  # prompt 0's two choices, then prompt 1's
    assert usage["prompt_tokens"] == first_usage["prompt_tokens"] + second_usage["prompt_tokens"]
    assert usage["completion_tokens"] == first_usage["completion_tokens"] + second_usage["completion_tokens"]


def test_token_id_prompt_is_the_same_as_its_text(client, model_and_tokenizer):
    _, tok = model_and_tokenizer
    ids = tok.encode(CONTEXT, add_special_tokens=False)
    by_text = client.post("/v1/completions", json={"prompt": CONTEXT, "max_tokens": 6, "temperature": 0}).json()
    by_ids = client.post("/v1/completions", json={"prompt": ids, "max_tokens": 6, "temperature": 0}).json()
    assert by_ids["choices"][0]["text"] == by_text["choices"][0]["text"]


def test_streamed_logprobs_and_echo_add_up_to_the_plain_answer(client):
    body = {"prompt": [CONTEXT, "x = "], "max_tokens": 5, "temperature": 0, "logprobs": 2, "echo": True}
    plain = client.post("/v1/completions", json=body).json()["choices"]
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as resp:
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    for choice in plain:
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == choice["index"]]
        assert "".join(c["text"] for c in mine) == choice["text"]
        streamed = [c["logprobs"] for c in mine if c["logprobs"]]
        for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
            assert sum((lp[key] for lp in streamed), []) == choice["logprobs"][key]


def test_echo_with_zero_max_tokens_answers_the_prompt_and_its_logprobs_only(client, model_and_tokenizer):
    model, tok = model_and_tokenizer
    inputs = [tok.encode(CONTEXT + c, add_special_tokens=False) for c in CONTINUATIONS]
    body = {"prompt": inputs, "max_tokens": 0, "logprobs": 2, "echo": True, "n": 2, "temperature": 0}
    resp = client.post("/v1/completions", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["usage"] == {
        "prompt_tokens": sum(map(len, inputs)),
        "completion_tokens": 0,
        "total_tokens": sum(map(len, inputs)),
    }
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    for choice, ids in zip(out["choices"], [inputs[0], inputs[0], inputs[1], inputs[1]]):
        assert choice["text"] == tok.decode(ids) and choice["finish_reason"] == "length"
        lp = choice["logprobs"]
        assert lp["tokens"] == [tok.decode([t]) for t in ids]  # the prompt's tokens, nothing generated
        reference = forward_logprobs(model, ids)
        assert lp["token_logprobs"][0] is None
        assert lp["token_logprobs"][1:] == pytest.approx(
            [reference[t - 1, ids[t]].item() for t in range(1, len(ids))], abs=1e-3
        )

    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as resp:
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    for choice in out["choices"]:
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == choice["index"]]
        assert "".join(c["text"] for c in mine) == choice["text"] and mine[-1]["finish_reason"] == "length"
        streamed = [c["logprobs"] for c in mine if c["logprobs"]]
        assert sum((lp["token_logprobs"] for lp in streamed), []) == choice["logprobs"]["token_logprobs"]

    text_only = client.post("/v1/completions", json={"prompt": CONTEXT, "max_tokens": 0, "echo": True}).json()
    assert text_only["choices"][0]["text"] == CONTEXT and text_only["choices"][0]["logprobs"] is None
    assert text_only["usage"]["completion_tokens"] == 0


def test_the_openai_client_reads_echo_and_logprobs(server, model_and_tokenizer):
    _, tok = model_and_tokenizer
    ids = tok.encode(CONTEXT, add_special_tokens=False)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0)
    resp = client.completions.create(model="codemill", prompt=[ids], echo=True, logprobs=1, max_tokens=1, temperature=0)
    assert len(resp.choices[0].logprobs.token_logprobs) == len(ids) + 1
    assert resp.choices[0].logprobs.token_logprobs[0] is None


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"prompt": [1, 2, 100_000], "max_tokens": 1}, "prompt", "invalid_value"),
        ({"prompt": [[1], [2, 100_000]], "max_tokens": 1}, "prompt[1]", "invalid_value"),
        ({"prompt": ["x", "x = 1\n" * 130], "max_tokens": 4}, "prompt[1]", "context_length_exceeded"),
    ],
)
def test_bad_prompts_are_named(client, body, param, code):
    resp = client.post("/v1/completions", json=body)
    assert resp.status_code == 400 and (resp.json()["error"]["param"], resp.json()["error"]["code"]) == (param, code)


def test_chat_logprobs_are_refused_not_ignored(chat_server):
    import httpx

    resp = httpx.post(
        chat_server.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"messages": [{"role": "user", "content": "hi"}], "logprobs": True},
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "unsupported_parameter"

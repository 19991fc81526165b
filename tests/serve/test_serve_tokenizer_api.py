"""/tokenizer_info, /tokenize, /detokenize as lm-eval's remote tokenizer calls them (with the API key)."""

import httpx
import pytest
from transformers import AutoTokenizer

from tests.serve.serve_helpers import API_KEY


def test_lm_eval_remote_tokenizer_flow(client, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    info = client.get("/tokenizer_info").json()  # lm-eval's check_remote_tokenizer_support, then its encode
    assert (info["eos_token"], info["bos_token"], info["model_max_length"]) == (tok.eos_token, tok.bos_token, 512)
    tokens = client.post("/tokenize", json={"prompt": "test", "add_special_tokens": False}).json()["tokens"]
    assert tokens == tok.encode("test", add_special_tokens=False)
    eos_id = client.post("/tokenize", json={"prompt": info["eos_token"], "add_special_tokens": False}).json()
    assert eos_id["tokens"][0] == tok.eos_token_id and eos_id["count"] == 1
    text = "def add(a, b):\n    return a + b\n"
    ids = client.post("/tokenize", json={"prompt": text, "add_special_tokens": False}).json()["tokens"]
    assert client.post("/detokenize", json={"tokens": ids}).json() == {"prompt": text}


@pytest.mark.parametrize(
    "path, body, param",
    [
        ("/tokenize", {"prompt": 3}, "prompt"),
        ("/tokenize", {"prompt": "x", "add_special_tokens": "no"}, "add_special_tokens"),
        ("/tokenize", {"text": "x"}, "text"),
        ("/detokenize", {"tokens": [1, "a"]}, "tokens"),
        ("/detokenize", {"tokens": [10**6]}, "tokens"),
    ],
)
def test_bad_tokenizer_requests_are_400(client, path, body, param):
    resp = client.post(path, json=body)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param


def test_tokenizer_routes_need_the_key(server):
    assert httpx.get(server.url + "/tokenizer_info").status_code == 401
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.post(server.url + "/tokenize", json={"prompt": "x"}, headers=headers).status_code == 200

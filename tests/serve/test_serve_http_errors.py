"""Auth on every protected route, and each client mistake as a 4xx naming the field (never a 5xx)."""

import json
import urllib.error
import urllib.request

import httpx
import openai
import pytest

from tests.serve.serve_helpers import API_KEY, metric_samples, sample

PROTECTED = [("GET", "/v1/models"), ("POST", "/v1/completions"), ("GET", "/metrics"), ("GET", "/no-such-route")]


@pytest.mark.parametrize("method, path", PROTECTED)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", f"Basic {API_KEY}", f"Bearer {API_KEY}x"])
def test_protected_routes_need_the_key(server, method, path, auth):
    headers = {"Authorization": auth} if auth else {}
    resp = httpx.request(method, server.url + path, headers=headers, json={"prompt": "x"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_api_key"
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_probes_are_open(server, path):
    assert httpx.get(server.url + path).status_code == 200


def test_key_opens_metrics_and_counts_rejections(server, client):
    before = sample(metric_samples(client), "codemill_request_errors_total", kind="invalid_api_key")
    httpx.get(server.url + "/metrics")
    after = sample(metric_samples(client), "codemill_request_errors_total", kind="invalid_api_key")
    assert after == before + 1


LINE = "x = 1\n"  # 4 tokens for the tiny tokenizer; the tiny model has 512 positions


@pytest.mark.parametrize(
    "body, status, param, code",
    [
        (b'{"prompt": "x", ', 400, None, "invalid_json"),
        (b"[" * 5000, 400, None, "invalid_json"),  # nests past Python's recursion limit
        (b'{"prompt": "def \\ud800 x"}', 400, "prompt", "invalid_value"),  # a lone surrogate
        (b'{"prompt": "x", "suffix": "\\udfff"}', 400, "suffix", "invalid_value"),
        ({"prompt": "x", "temprature": 0.5}, 400, "temprature", "unknown_parameter"),
        ({"prompt": "x", "max_tokens": "8"}, 400, "max_tokens", "invalid_type"),
        ({"prompt": "x", "n": 1.5}, 400, "n", "invalid_type"),
        ({"prompt": LINE * 120, "max_tokens": 64}, 400, "max_tokens", "context_length_exceeded"),
        ({"prompt": LINE * 60, "suffix": LINE * 60, "max_tokens": 64}, 400, "max_tokens", "context_length_exceeded"),
        ({"prompt": LINE * 130, "max_tokens": 4}, 400, "prompt", "context_length_exceeded"),
        ({"prompt": "x", "max_tokens": 65}, 400, "max_tokens", "max_tokens_over_cap"),
        ({"prompt": "x", "n": 5}, 400, "n", "n_over_cap"),
        ({"prompt": ""}, 400, "prompt", "empty_prompt"),
        ({"prompt": "x", "model": "gpt-4"}, 404, "model", "model_not_found"),
        ({"prompt": "x" * 20_000}, 413, None, "body_too_large"),
    ],
)
def test_client_errors(client, body, status, param, code):
    before = sample(metric_samples(client), "codemill_request_errors_total", kind=code)
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    resp = client.post("/v1/completions", **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]
    if param:
        assert param in error["message"]
    assert sample(metric_samples(client), "codemill_request_errors_total", kind=code) == before + 1


def test_body_limit_holds_without_content_length(client):
    def chunks():
        yield b'{"prompt": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    resp = client.post("/v1/completions", content=chunks())  # chunked transfer: no Content-Length
    assert resp.status_code == 413


def test_wrong_method_and_unknown_route_are_openai_errors(client):
    resp = client.get("/v1/completions")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"
    resp = client.get("/v1/nothing")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_model_name_may_be_given(client):
    resp = client.post("/v1/completions", json={"prompt": "x", "model": "codemill", "max_tokens": 2})
    assert resp.status_code == 200


def test_prompt_that_exactly_fills_the_context_is_served(client):
    resp = client.post("/v1/completions", json={"prompt": LINE * 120, "max_tokens": 32, "temperature": 0})
    assert resp.status_code == 200
    assert resp.json()["usage"]["prompt_tokens"] == 480


def test_model_failure_is_a_server_error_and_the_server_lives_on(server, client, monkeypatch):
    def broken_model(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(server.state.engine.backend, "model", broken_model)
    resp = client.post("/v1/completions", json={"prompt": "x = ", "max_tokens": 3})
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal_error" and "simulated" in resp.json()["error"]["message"]
    with client.stream("POST", "/v1/completions", json={"prompt": "x = ", "max_tokens": 3, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert r.status_code == 200 and '"code":"internal_error"' in lines[0] and lines[-1] == "data: [DONE]"
    monkeypatch.undo()
    assert client.post("/v1/completions", json={"prompt": "x = ", "max_tokens": 3}).status_code == 200
    assert httpx.get(server.url + "/ready").status_code == 200


BIG = json.dumps({"prompt": "x" * 20_000_000}).encode()  # 20 MB against the 16 KB limit


def _urllib_post(url: str, body: bytes, key: str = API_KEY) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:  # a real HTTP answer, not a reset connection
        return e.code, json.loads(e.read())


def test_huge_body_is_a_413_that_urllib_receives(server):
    status, body = _urllib_post(server.url + "/v1/completions", BIG)
    assert status == 413 and body["error"]["code"] == "body_too_large"


def test_huge_body_with_a_wrong_key_is_a_401_that_urllib_receives(server):
    status, body = _urllib_post(server.url + "/v1/completions", BIG, key="wrong")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


def test_huge_body_is_a_413_that_httpx_receives(server):
    resp = httpx.post(
        server.url + "/v1/completions",
        content=BIG,
        timeout=120,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "body_too_large"
    assert resp.headers["connection"] == "close"


def test_huge_body_is_a_413_that_the_openai_client_receives(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
    with pytest.raises(openai.APIStatusError) as caught:
        client.completions.create(model="codemill", prompt="x" * 20_000_000)
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "body_too_large"


def test_huge_body_sent_after_100_continue_is_refused_before_it_is_sent(server):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BIG)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in reply

"""The teacher client's pieces: endpoint URLs, Retry-After, reading completions, the cache key."""

from __future__ import annotations

import email.utils
import time

import httpx

from codemill.synth.teacher import Request, chat_url, parse_completion, retry_after


def test_chat_url_accepts_a_host_a_v1_base_or_the_full_path():
    assert chat_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_url("https://api.x/v1/chat/completions") == "https://api.x/v1/chat/completions"


def test_retry_after_reads_seconds_and_dates():
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after(httpx.Response(429)) is None
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after(httpx.Response(503, headers={"Retry-After": date})) <= 31
    assert retry_after(httpx.Response(503, headers={"Retry-After": "99999"})) == 300.0


def test_a_reasoning_field_is_put_back_as_a_think_block():
    reply = parse_completion(
        {
            "choices": [{"message": {"content": "x = 1", "reasoning_content": "why"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3},
        }
    )
    assert reply.text == "<think>\nwhy\n</think>\n\nx = 1" and reply.prompt_tokens == 3 and not reply.error
    assert parse_completion({"choices": []}).error.startswith("not a chat completion")
    assert parse_completion({"choices": [{"message": {"content": ["parts"]}}]}).error


def test_the_cache_key_is_the_request_body():
    a = Request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 0})
    assert a.key == Request({"seed": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}).key
    assert a.key != Request({**a.body, "seed": 1}).key


def test_error_kinds():
    from codemill.synth.teacher import error_kind

    assert [
        error_kind(e)
        for e in (
            "timed out after 1s (3 tries)",
            "cannot connect (ConnectError: x)",
            "HTTP 429 after 5 tries",
            "HTTP 404: no such model",
            "HTTP 200 with a body that is not JSON",
            "not a chat completion (KeyError)",
        )
    ] == ["timeout", "connect", "http_429", "http_404", "bad_reply", "bad_reply"]

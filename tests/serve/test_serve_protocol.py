"""Request validation: every client mistake is a 400 naming the field; good requests get defaults."""

import json

import pytest

from codemill.serve.protocol import ApiError, Limits, parse_completion_request, sse

LIMITS = Limits(max_tokens_cap=64, default_max_tokens=16, n_cap=4)


def parse(body) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_completion_request(raw, LIMITS)


def rejected(body) -> ApiError:
    with pytest.raises(ApiError) as e:
        parse(body)
    assert e.value.status == 400
    return e.value


def test_defaults_follow_openai():
    req = parse({"prompt": "def f():"})
    assert (req.max_tokens, req.temperature, req.top_p, req.n, req.stop, req.stream, req.suffix) == (
        16,
        1.0,
        1.0,
        1,
        [],
        False,
        None,
    )


def test_full_request_is_parsed():
    req = parse(
        {
            "model": "codemill",
            "prompt": "a",
            "suffix": "b",
            "max_tokens": 8,
            "temperature": 0,
            "top_p": 0.5,
            "n": 2,
            "stop": "\n",
            "seed": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u",
            "echo": False,
            "logprobs": None,
            "presence_penalty": 0,
            "best_of": 2,
        }
    )
    assert (
        req.suffix,
        req.max_tokens,
        req.temperature,
        req.top_p,
        req.n,
        req.stop,
        req.seed,
        req.stream,
        req.include_usage,
    ) == ("b", 8, 0.0, 0.5, 2, ["\n"], 7, True, True)


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"prompt": NaN}', "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
    ],
)
def test_malformed_json(raw, code):
    err = rejected(raw)
    assert err.code == code and err.param is None
    assert err.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({"prompt": "x", "max_token": 5}, "max_token", "unknown_parameter"),
        ({"prompt": "x", "max_tokens": "ten"}, "max_tokens", "invalid_type"),
        ({"prompt": "x", "max_tokens": True}, "max_tokens", "invalid_type"),
        ({"prompt": "x", "max_tokens": 2.5}, "max_tokens", "invalid_type"),
        ({"prompt": "x", "temperature": "hot"}, "temperature", "invalid_type"),
        ({"prompt": "x", "temperature": 3}, "temperature", "invalid_value"),
        ({"prompt": "x", "top_p": 0}, "top_p", "invalid_value"),
        ({"prompt": "x", "stream": "yes"}, "stream", "invalid_type"),
        ({"prompt": "x", "stop": 5}, "stop", "invalid_type"),
        ({"prompt": "x", "stop": [f"s{i}" for i in range(17)]}, "stop", "invalid_value"),
        ({"prompt": "x", "stop": [""]}, "stop", "invalid_value"),
        ({"prompt": "x", "seed": "1"}, "seed", "invalid_type"),
        ({"prompt": "x", "suffix": 3}, "suffix", "invalid_type"),
        ({"prompt": ["a", 3]}, "prompt", "invalid_type"),
        ({"prompt": [[1, 2], [-1]]}, "prompt[1]", "invalid_type"),
        ({"prompt": [1, True]}, "prompt", "invalid_type"),
        ({"prompt": []}, "prompt", "empty_prompt"),
        ({"prompt": [[1], []]}, "prompt[1]", "empty_prompt"),
        ({"prompt": ["a", ""]}, "prompt[1]", "empty_prompt"),
        ({"prompt": [1, 2], "suffix": "x"}, "suffix", "unsupported_parameter"),
        ({"prompt": ["a"] * 65}, "prompt", "too_many_prompts"),
        ({"suffix": "x"}, "prompt", "missing_parameter"),
        ({"prompt": ""}, "prompt", "empty_prompt"),
        ({"prompt": "", "suffix": ""}, "prompt", "empty_prompt"),
        ({"prompt": "x", "max_tokens": 65}, "max_tokens", "max_tokens_over_cap"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"prompt": "x", "max_tokens": -1, "echo": True}, "max_tokens", "invalid_value"),
        ({"prompt": "x", "max_tokens": False, "echo": True}, "max_tokens", "invalid_type"),
        ({"prompt": "x", "max_tokens": 0, "echo": True, "suffix": "y"}, "echo", "unsupported_parameter"),
        ({"prompt": "x", "n": 5}, "n", "n_over_cap"),
        ({"prompt": "x", "n": 0}, "n", "invalid_value"),
        ({"prompt": "x", "suffix": "y", "echo": True}, "echo", "unsupported_parameter"),
        ({"prompt": "x", "echo": 1}, "echo", "invalid_type"),
        ({"prompt": "x", "logprobs": 21}, "logprobs", "invalid_value"),
        ({"prompt": "x", "logprobs": -1}, "logprobs", "invalid_value"),
        ({"prompt": "x", "logprobs": True}, "logprobs", "invalid_type"),
        ({"prompt": "x", "best_of": 3}, "best_of", "unsupported_parameter"),
        ({"prompt": "x", "stream_options": {"include_usage": 1}}, "stream_options.include_usage", "invalid_type"),
        ({"prompt": "x", "model": 3}, "model", "invalid_type"),
    ],
)
def test_bad_field_is_named(body, param, code):
    err = rejected(body)
    assert (err.param, err.code) == (param, code)
    assert param.split(".")[0] in err.message


@pytest.mark.parametrize(
    "prompt, prompts",
    [
        ("def f", ["def f"]),
        (["a", "b"], ["a", "b"]),
        ([5, 6, 7], [[5, 6, 7]]),
        ([[5, 6], [7]], [[5, 6], [7]]),
    ],
)
def test_prompt_may_be_text_token_ids_or_lists_of_either(prompt, prompts):
    req = parse({"prompt": prompt, "echo": True, "logprobs": 2, "max_tokens": 1})
    assert (req.prompts, req.echo, req.logprobs) == (prompts, True, 2)


def test_echo_with_zero_max_tokens_asks_for_the_prompt_only():
    """OpenAI's way to score a prompt (older lm-evaluation-harness sends it): no generated token."""
    req = parse({"prompt": [[5, 6], [7, 8]], "echo": True, "max_tokens": 0, "logprobs": 1})
    assert (req.max_tokens, req.echo, req.logprobs) == (0, True, 1)
    err = rejected({"prompt": "x", "max_tokens": 0})
    assert "'echo'" in err.message  # says how 0 is allowed


def test_empty_prompt_is_fine_with_a_suffix():
    assert parse({"prompt": "", "suffix": "return x\n"}).prompt == ""


def test_sse_framing():
    assert sse("[DONE]") == b"data: [DONE]\n\n"
    assert json.loads(sse({"a": 1})[len(b"data: ") :]) == {"a": 1}

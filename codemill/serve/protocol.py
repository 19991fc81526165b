"""The OpenAI completions protocol: strict request validation, response and chunk bodies.

Validation is hand-written rather than a pydantic model so that every client mistake
becomes a 4xx whose OpenAI-style body names the offending field::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens",
               "code": "invalid_type"}}

Rules: unknown fields are rejected (a typo such as ``max_token`` must not be silently
ignored); ``true`` is not an integer; NaN/Infinity are not JSON; parameters codemill does
not implement (``echo``, ``logprobs``, penalties, ``logit_bias``, ``best_of`` > n) are
accepted only at their no-op value, so a client never gets a different behaviour than
it asked for. Limits that depend on the model (context length) are checked by the server
after tokenization.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

MAX_STOP = 4
MAX_STOP_CHARS = 256


class ApiError(Exception):
    """A request that cannot be served; carries the HTTP status and the OpenAI error body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str = "invalid_request",
                 type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    max_tokens_cap: int
    default_max_tokens: int
    n_cap: int


@dataclass
class CompletionRequest:
    prompt: str
    suffix: str | None = None
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    model: str | None = None


# Accepted only at the value that means "off": (allowed values, what to tell the client).
_NO_OP_FIELDS = {
    "echo": ((False, None), "echo is not supported"),
    "logprobs": ((None, 0), "logprobs are not supported"),
    "presence_penalty": ((None, 0, 0.0), "presence_penalty is not supported (only 0)"),
    "frequency_penalty": ((None, 0, 0.0), "frequency_penalty is not supported (only 0)"),
    "logit_bias": ((None, {}), "logit_bias is not supported"),
}
_FIELDS = {"model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "stream",
           "stream_options", "user", "best_of", *_NO_OP_FIELDS}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _type_error(param: str, expected: str, value) -> ApiError:
    return _invalid(param, f"'{param}' must be {expected}, got {json.dumps(value)[:80]}", code="invalid_type")


def _int(body: dict, name: str, default):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer", value)
    return value


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number", value)
    return float(value)


def _stop(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _type_error("stop", "a string or a list of strings", value)
    if len(stops) > MAX_STOP:
        raise _invalid("stop", f"'stop' holds at most {MAX_STOP} sequences, got {len(stops)}")
    if any(not s or len(s) > MAX_STOP_CHARS for s in stops):
        raise _invalid("stop", f"each 'stop' sequence must hold 1 to {MAX_STOP_CHARS} characters")
    for s in stops:
        _require_utf8("stop", s)
    return stops


def _require_utf8(param: str, text: str) -> None:
    """JSON may carry lone surrogates ("\\ud800"); no tokenizer can encode them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _invalid(param, f"'{param}' is not valid Unicode text (lone surrogate at {e.start})") from e


def decode_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(400, f"request body is not valid JSON: {e}", code="invalid_json") from e
    except RecursionError as e:  # a few KB of "[[[[" nests past Python's recursion limit
        raise ApiError(400, "request body is not valid JSON: nested too deeply", code="invalid_json") from e
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return body


def parse_completion_request(raw: bytes, limits: Limits) -> CompletionRequest:
    """Validate a ``POST /v1/completions`` body; raises :class:`ApiError` naming the field."""
    body = decode_json(raw)
    for name in sorted(body):
        if name not in _FIELDS:
            raise _invalid(name, f"unrecognized request argument supplied: {name}", code="unknown_parameter")
    for name, (allowed, message) in _NO_OP_FIELDS.items():
        if name in body and body[name] not in allowed:
            raise _invalid(name, message, code="unsupported_parameter")

    prompt = body.get("prompt")
    if "prompt" not in body or prompt is None:
        raise _invalid("prompt", "'prompt' is required", code="missing_parameter")
    if not isinstance(prompt, str):
        raise _type_error("prompt", "a string", prompt)
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _type_error("suffix", "a string", suffix)
    _require_utf8("prompt", prompt)
    _require_utf8("suffix", suffix or "")
    if not prompt and not suffix:
        raise _invalid("prompt", "'prompt' must not be empty (an empty prompt is allowed only with a 'suffix')",
                       code="empty_prompt")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _type_error("model", "a string", model)
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _type_error("user", "a string", body["user"])

    max_tokens = _int(body, "max_tokens", limits.default_max_tokens)
    if max_tokens < 1:
        raise _invalid("max_tokens", f"'max_tokens' must be >= 1, got {max_tokens}")
    if max_tokens > limits.max_tokens_cap:
        raise _invalid("max_tokens", f"'max_tokens' is {max_tokens}, above this server's cap of "
                                     f"{limits.max_tokens_cap}", code="max_tokens_over_cap")
    n = _int(body, "n", 1)
    if n < 1:
        raise _invalid("n", f"'n' must be >= 1, got {n}")
    if n > limits.n_cap:
        raise _invalid("n", f"'n' is {n}, above this server's cap of {limits.n_cap}", code="n_over_cap")
    best_of = _int(body, "best_of", None)
    if best_of is not None and best_of != n:
        raise _invalid("best_of", "best_of is supported only when equal to n", code="unsupported_parameter")

    temperature = _number(body, "temperature", 1.0)
    if not 0.0 <= temperature <= 2.0:
        raise _invalid("temperature", f"'temperature' must be between 0 and 2, got {temperature}")
    top_p = _number(body, "top_p", 1.0)
    if not 0.0 < top_p <= 1.0:
        raise _invalid("top_p", f"'top_p' must be in (0, 1], got {top_p}")
    seed = _int(body, "seed", None)
    if seed is not None and not -2**63 <= seed < 2**64:
        raise _invalid("seed", "'seed' must fit in 64 bits")

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise _type_error("stream_options", 'an object like {"include_usage": true}', options)
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise _type_error("stream_options.include_usage", "a boolean", include_usage)
    return CompletionRequest(prompt=prompt, suffix=suffix, max_tokens=max_tokens, temperature=temperature,
                             top_p=top_p, n=n, stop=_stop(body.get("stop")), seed=seed, stream=bool(stream),
                             include_usage=include_usage, model=model)


# ---------------------------------------------------------------------------- responses


def completion_id() -> str:
    return "cmpl-" + uuid.uuid4().hex


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(cid: str, model: str, texts: list[str], reasons: list[str], prompt_tokens: int,
                    completion_tokens: int) -> dict:
    choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": r}
               for i, (t, r) in enumerate(zip(texts, reasons))]
    return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}


def chunk_body(cid: str, model: str, index: int, text: str, finish_reason: str | None) -> dict:
    return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}]}


def usage_chunk_body(cid: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode("utf-8")

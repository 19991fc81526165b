"""The OpenAI completions protocol: strict request validation, response and chunk bodies.

Validation is hand-written rather than a pydantic model so that every client mistake
becomes a 4xx whose OpenAI-style body names the offending field::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens",
               "code": "invalid_type"}}

Rules: unknown fields are rejected (a typo such as ``max_token`` must not be silently
ignored); ``true`` is not an integer; NaN/Infinity are not JSON; parameters codemill does
not implement (penalties, ``logit_bias``, ``best_of`` > n) are accepted only at their
no-op value, so a client never gets a different behaviour than it asked for. ``echo``
and ``logprobs`` are implemented (:mod:`codemill.serve.logprobs`); ``max_tokens: 0`` is
allowed with ``echo`` only (OpenAI's way to score a prompt: the prompt comes back, nothing
is generated); chat bodies are
:mod:`codemill.serve.chat`'s. Limits that depend on the model (context length) are checked by the server
after tokenization.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

MAX_STOP = 16  # OpenAI allows 4; lm-eval sends a task's `until` list plus the EOS string (humaneval: 6)
MAX_STOP_CHARS = 256
MAX_LOGPROBS = 20  # top alternatives per token (vLLM's default cap; OpenAI's legacy API: 5)


class ApiError(Exception):
    """A request that cannot be served; carries the HTTP status and the OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str = "invalid_request",
        type_: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Limits:
    max_tokens_cap: int
    default_max_tokens: int
    n_cap: int
    max_prompts: int = 64


@dataclass(kw_only=True)
class GenerationParams:
    """What every generation request carries; the backends read only these."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    model: str | None = None
    echo: bool = False  # completions only: the prompt's tokens come back with their logprobs (max_tokens may be 0)
    logprobs: int | None = None  # completions only: top alternatives per token (None: no logprobs)


@dataclass(kw_only=True)
class CompletionRequest(GenerationParams):
    """``prompt`` is the body's value: a string, a list of strings, a list of token ids or a list of those."""

    prompt: str | list
    suffix: str | None = None

    @property
    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: text, or token ids taken as they are."""
        p = self.prompt
        if isinstance(p, str) or (p and all(isinstance(t, int) for t in p)):
            return [p]
        return list(p)


# Accepted only at the value that means "off": (allowed values, what to tell the client).
_NO_OP_FIELDS = {
    "presence_penalty": ((None, 0, 0.0), "presence_penalty is not supported (only 0)"),
    "frequency_penalty": ((None, 0, 0.0), "frequency_penalty is not supported (only 0)"),
    "logit_bias": ((None, {}), "logit_bias is not supported"),
}
_FIELDS = {
    "model",
    "prompt",
    "suffix",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "user",
    "best_of",
    "echo",
    "logprobs",
    *_NO_OP_FIELDS,
}


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


def check_fields(body: dict, known: set[str], no_op: dict) -> None:
    """Unknown fields and fields set to something codemill does not do are 400s naming them."""
    for name in sorted(body):
        if name not in known:
            raise _invalid(name, f"unrecognized request argument supplied: {name}", code="unknown_parameter")
    for name, (allowed, message) in no_op.items():
        if name in body and body[name] not in allowed:
            raise _invalid(name, message, code="unsupported_parameter")


def generation_fields(body: dict, limits: Limits, max_tokens_name: str = "max_tokens", min_tokens: int = 1) -> dict:
    """The :class:`GenerationParams` fields of a request body, validated (``max_tokens >= min_tokens``)."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _type_error("model", "a string", model)
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _type_error("user", "a string", body["user"])

    max_tokens = _int(body, max_tokens_name, limits.default_max_tokens)
    if max_tokens < min_tokens:
        raise _invalid(max_tokens_name, f"'{max_tokens_name}' must be >= {min_tokens}, got {max_tokens}")
    if max_tokens > limits.max_tokens_cap:
        raise _invalid(
            max_tokens_name,
            f"'{max_tokens_name}' is {max_tokens}, above this server's cap of {limits.max_tokens_cap}",
            code="max_tokens_over_cap",
        )
    n = _int(body, "n", 1)
    if n < 1:
        raise _invalid("n", f"'n' must be >= 1, got {n}")
    if n > limits.n_cap:
        raise _invalid("n", f"'n' is {n}, above this server's cap of {limits.n_cap}", code="n_over_cap")

    temperature = _number(body, "temperature", 1.0)
    if not 0.0 <= temperature <= 2.0:
        raise _invalid("temperature", f"'temperature' must be between 0 and 2, got {temperature}")
    top_p = _number(body, "top_p", 1.0)
    if not 0.0 < top_p <= 1.0:
        raise _invalid("top_p", f"'top_p' must be in (0, 1], got {top_p}")
    seed = _int(body, "seed", None)
    if seed is not None and not -(2**63) <= seed < 2**64:
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
    return {
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "n": n,
        "stop": _stop(body.get("stop")),
        "seed": seed,
        "stream": bool(stream),
        "include_usage": include_usage,
        "model": model,
    }


def parse_completion_request(raw: bytes, limits: Limits) -> CompletionRequest:
    """Validate a ``POST /v1/completions`` body; raises :class:`ApiError` naming the field."""
    body = decode_json(raw)
    check_fields(body, _FIELDS, _NO_OP_FIELDS)

    prompt = body.get("prompt")
    if "prompt" not in body or prompt is None:
        raise _invalid("prompt", "'prompt' is required", code="missing_parameter")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise _type_error("suffix", "a string", suffix)
    _require_utf8("suffix", suffix or "")
    _prompts(prompt, suffix, limits)
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise _type_error("echo", "a boolean", echo)
    if echo and suffix is not None:
        raise _invalid("echo", "'echo' cannot be combined with 'suffix'", code="unsupported_parameter")
    if not echo and _int(body, "max_tokens", None) == 0:
        raise _invalid("max_tokens", "'max_tokens' must be >= 1, got 0 (0 is allowed only with 'echo': true)")
    logprobs = _int(body, "logprobs", None)
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise _invalid("logprobs", f"'logprobs' must be between 0 and {MAX_LOGPROBS}, got {logprobs}")
    fields = generation_fields(body, limits, min_tokens=0 if echo else 1)
    best_of = _int(body, "best_of", None)
    if best_of is not None and best_of != fields["n"]:
        raise _invalid("best_of", "best_of is supported only when equal to n", code="unsupported_parameter")
    return CompletionRequest(prompt=prompt, suffix=suffix, echo=bool(echo), logprobs=logprobs, **fields)


def _token_ids(value, param: str) -> list[int]:
    if not value:
        raise _invalid(param, f"'{param}' must not be an empty list of token ids", code="empty_prompt")
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in value):
        raise _type_error(param, "a list of token ids (integers >= 0)", value)
    return value


def _prompts(prompt, suffix: str | None, limits: Limits) -> list:
    """Check ``prompt`` (string, strings, token ids, lists of token ids); returns one entry per prompt."""
    expected = "a string, a list of strings, a list of token ids or a list of token id lists"
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        prompts = [_token_ids(prompt, "prompt")]
    elif isinstance(prompt, list) and prompt:
        prompts = prompt
    else:
        raise (
            _type_error("prompt", expected, prompt)
            if prompt != []
            else _invalid("prompt", "'prompt' must not be an empty list", code="empty_prompt")
        )
    if len(prompts) > limits.max_prompts:
        raise _invalid(
            "prompt",
            f"'prompt' holds {len(prompts)} prompts, above this server's cap of {limits.max_prompts}",
            code="too_many_prompts",
        )
    for i, p in enumerate(prompts):
        param = "prompt" if len(prompts) == 1 else f"prompt[{i}]"
        if isinstance(p, list):
            _token_ids(p, param)
            if suffix is not None:
                raise _invalid(
                    "suffix", "'suffix' works with text prompts only, not token ids", code="unsupported_parameter"
                )
        elif isinstance(p, str):
            _require_utf8(param, p)
            if not p and not suffix:
                raise _invalid(
                    param,
                    f"'{param}' must not be empty (an empty prompt is allowed only with a 'suffix')",
                    code="empty_prompt",
                )
        else:
            raise _type_error("prompt", expected, prompt)
    return prompts


# ---------------------------------------------------------------------------- responses


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class CompletionFormat:
    """OpenAI's ``text_completion`` body and stream chunks (chat's twin: ``chat.ChatFormat``)."""

    @staticmethod
    def new_id() -> str:
        return "cmpl-" + uuid.uuid4().hex

    @staticmethod
    def _head(cid: str, model: str) -> dict:
        return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model}

    def body(
        self,
        cid: str,
        model: str,
        texts: list[str],
        reasons: list[str],
        prompt_tokens: int,
        completion_tokens: int,
        logprobs: list[dict | None] | None = None,
    ) -> dict:
        logprobs = logprobs or [None] * len(texts)
        choices = [
            {"index": i, "text": t, "logprobs": lp, "finish_reason": r}
            for i, (t, r, lp) in enumerate(zip(texts, reasons, logprobs))
        ]
        return {**self._head(cid, model), "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}

    def opening_chunks(self, cid: str, model: str, choices: int) -> list[dict]:
        return []

    def chunk(
        self, cid: str, model: str, index: int, text: str, finish_reason: str | None, logprobs: dict | None = None
    ) -> dict:
        return {
            **self._head(cid, model),
            "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, cid: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict:
        return {**self._head(cid, model), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def sse(obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()

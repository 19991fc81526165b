"""``/v1/chat/completions``: message validation and OpenAI's chat response and chunk bodies.

Messages are ``{"role": "system"|"user"|"assistant", "content": text}`` (``developer``, the
newer name of ``system``, is read as ``system``). Content is a string or a list of
``{"type": "text", "text": ...}`` parts, joined; an assistant message's content may be
``null`` or left out (OpenAI allows it for turns that carried tool calls, and some clients
send empty assistant turns so), read as ``""``. Any other part (images, audio) and any
message field codemill does not use (``tool_calls``) is a 400 naming it, as are an empty
list and an unknown role. Sampling fields and their limits are the completions API's
(:func:`codemill.serve.protocol.generation_fields`); ``max_completion_tokens`` (the newer
name) and ``max_tokens`` are both accepted; without either, a reply may run to the server's
cap or to the end of the context, whichever comes first. The prompt is the model's own chat template
(:meth:`codemill.serve.prompting.PromptBuilder.chat`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from codemill.serve.protocol import (
    GenerationParams,
    Limits,
    _invalid,
    _require_utf8,
    _type_error,
    check_fields,
    decode_json,
    generation_fields,
    usage,
)

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_MESSAGE_FIELDS = {"role", "content", "name"}

_NO_OP_FIELDS = {
    "logprobs": ((None, False), "logprobs are not supported on chat completions"),
    "top_logprobs": ((None, 0), "top_logprobs are not supported on chat completions"),
    "presence_penalty": ((None, 0, 0.0), "presence_penalty is not supported (only 0)"),
    "frequency_penalty": ((None, 0, 0.0), "frequency_penalty is not supported (only 0)"),
    "logit_bias": ((None, {}), "logit_bias is not supported"),
    "response_format": ((None, {"type": "text"}), 'response_format is supported only as {"type": "text"}'),
    "tools": ((None, []), "tools are not supported"),
    "tool_choice": ((None, "none"), 'tool_choice is not supported (only "none")'),
}
_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "stream",
    "stream_options",
    "user",
    *_NO_OP_FIELDS,
}


@dataclass(kw_only=True)
class ChatRequest(GenerationParams):
    messages: list[dict] = field(default_factory=list)
    max_tokens_given: bool = True  # False: the reply may run to the cap or the end of the context


def _content(i: int, value) -> str:
    param = f"messages[{i}].content"
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise _invalid(
                    f"{param}[{j}]",
                    f"'{param}[{j}]' is a {kind!r} part; this server reads text only",
                    code="unsupported_content",
                )
            texts.append(part["text"])
        text = "".join(texts)
    else:
        raise _type_error(param, "a string or a list of text parts", value)
    _require_utf8(param, text)
    return text


def parse_messages(value) -> list[dict]:
    if value is None:
        raise _invalid("messages", "'messages' is required", code="missing_parameter")
    if not isinstance(value, list):
        raise _type_error("messages", "a list of messages", value)
    if not value:
        raise _invalid("messages", "'messages' must hold at least one message", code="empty_messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{i}]", 'an object like {"role": "user", "content": "..."}', message)
        extra = sorted(set(message) - _MESSAGE_FIELDS)
        if extra:
            raise _invalid(
                f"messages[{i}].{extra[0]}",
                f"unrecognized message field supplied: messages[{i}].{extra[0]}",
                code="unknown_parameter",
            )
        role = message.get("role")
        if role not in ROLES:
            raise _invalid(
                f"messages[{i}].role",
                f"'messages[{i}].role' is {role!r}; expected one of system, user, assistant",
                code="invalid_role",
            )
        content = message.get("content")
        if content is None and ROLES[role] != "assistant":
            state = "null" if "content" in message else "missing"
            raise _invalid(
                f"messages[{i}].content",
                f"'messages[{i}].content' is required for a {role} message, got {state} "
                "(only an assistant message may leave its content null)",
                code="missing_parameter",
            )
        out = {"role": ROLES[role], "content": "" if content is None else _content(i, content)}
        if message.get("name") is not None:
            if not isinstance(message["name"], str):
                raise _type_error(f"messages[{i}].name", "a string", message["name"])
            out["name"] = message["name"]
        messages.append(out)
    return messages


def parse_chat_request(raw: bytes, limits: Limits) -> ChatRequest:
    """Validate a ``POST /v1/chat/completions`` body; raises ``ApiError`` naming the field."""
    body = decode_json(raw)
    check_fields(body, _FIELDS, _NO_OP_FIELDS)
    messages = parse_messages(body.get("messages"))
    if body.get("max_completion_tokens") is not None and body.get("max_tokens") is not None:
        raise _invalid("max_tokens", "give 'max_completion_tokens' or 'max_tokens', not both")
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    fields = generation_fields(body, limits, max_tokens_name=name)
    given = body.get(name) is not None
    if not given:  # OpenAI's chat has no 16-token default: a reply runs until it ends
        fields["max_tokens"] = limits.max_tokens_cap
    return ChatRequest(messages=messages, max_tokens_given=given, **fields)


# ---------------------------------------------------------------------------- responses


class ChatFormat:
    """OpenAI's ``chat.completion`` body and ``chat.completion.chunk`` events."""

    @staticmethod
    def new_id() -> str:
        return "chatcmpl-" + uuid.uuid4().hex

    @staticmethod
    def _head(cid: str, model: str, obj: str) -> dict:
        return {"id": cid, "object": obj, "created": int(time.time()), "model": model}

    def body(
        self,
        cid: str,
        model: str,
        texts: list[str],
        reasons: list[str],
        prompt_tokens: int,
        completion_tokens: int,
        logprobs=None,
    ) -> dict:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None, "finish_reason": r}
            for i, (t, r) in enumerate(zip(texts, reasons))
        ]
        return {
            **self._head(cid, model, "chat.completion"),
            "choices": choices,
            "usage": usage(prompt_tokens, completion_tokens),
        }

    def opening_chunks(self, cid: str, model: str, choices: int) -> list[dict]:
        """OpenAI opens each choice's stream with its role."""
        return [self._chunk(cid, model, i, {"role": "assistant", "content": ""}, None) for i in range(choices)]

    def chunk(self, cid: str, model: str, index: int, text: str, finish_reason: str | None, logprobs=None) -> dict:
        return self._chunk(cid, model, index, {"content": text} if text or finish_reason is None else {}, finish_reason)

    def _chunk(self, cid: str, model: str, index: int, delta: dict, finish_reason: str | None) -> dict:
        return {
            **self._head(cid, model, "chat.completion.chunk"),
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, cid: str, model: str, prompt_tokens: int, completion_tokens: int) -> dict:
        return {
            **self._head(cid, model, "chat.completion.chunk"),
            "choices": [],
            "usage": usage(prompt_tokens, completion_tokens),
        }

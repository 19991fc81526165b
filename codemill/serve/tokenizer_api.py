"""``/tokenizer_info``, ``/tokenize``, ``/detokenize``: the model's tokenizer over HTTP, in vLLM's shapes.

lm-evaluation-harness's ``local-completions`` looks for these (``tokenizer_backend=remote``,
picked automatically when ``/tokenizer_info`` and ``/tokenize`` answer) to count context
tokens without a local copy of the tokenizer. ``/tokenize`` is plain tokenization of the
text (special-token text is special here, as in vLLM): it tells a client which ids the
model knows, while ``/v1/completions`` decides itself how it tokenizes a prompt.
"""

from __future__ import annotations

from codemill.serve.protocol import _invalid, _require_utf8, _type_error, check_fields, decode_json


def tokenizer_info(tokenizer, context_length: int) -> dict:
    return {
        "tokenizer_class": type(tokenizer).__name__,
        "eos_token": tokenizer.eos_token,
        "bos_token": tokenizer.bos_token,
        "pad_token": tokenizer.pad_token,
        "chat_template": getattr(tokenizer, "chat_template", None),
        "model_max_length": context_length,
        "vocab_size": len(tokenizer),
    }


def tokenize(raw: bytes, tokenizer, context_length: int) -> dict:
    body = decode_json(raw)
    check_fields(body, {"prompt", "add_special_tokens", "model"}, {})
    prompt, add_special = body.get("prompt"), body.get("add_special_tokens", True)
    if not isinstance(prompt, str):
        raise _type_error("prompt", "a string", prompt)
    _require_utf8("prompt", prompt)
    if not isinstance(add_special, bool):
        raise _type_error("add_special_tokens", "a boolean", add_special)
    ids = tokenizer.encode(prompt, add_special_tokens=add_special)
    return {"count": len(ids), "max_model_len": context_length, "tokens": ids}


def detokenize(raw: bytes, tokenizer) -> dict:
    body = decode_json(raw)
    check_fields(body, {"tokens", "model"}, {})
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or any(isinstance(t, bool) or not isinstance(t, int) for t in tokens):
        raise _type_error("tokens", "a list of token ids", tokens)
    if any(not 0 <= t < len(tokenizer) for t in tokens):
        raise _invalid("tokens", f"'tokens' holds ids outside this model's vocabulary of {len(tokenizer)}")
    return {"prompt": tokenizer.decode(tokens)}

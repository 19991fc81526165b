"""Prompts as token ids: plain completions and fill-in-the-middle (PSM) with the model's own sentinels.

A request with ``suffix`` becomes ``[bos] <fim_begin> prefix <fim_hole> suffix <fim_end>``,
the PSM layout the model was trained on, and the model writes the middle. The prompt is
built from token ids rather than from one string so that sentinel-looking text inside the
user's code stays ordinary text (``split_special_tokens``): only codemill places
sentinels. Both backends receive these ids, so vLLM (which rejects ``suffix``) serves
FIM the same way.

The sentinels are looked up in the tokenizer: codemill's own (DeepSeek-Coder's) first,
then StarCoder's, so a model from either family serves FIM; a model with none answers
a ``suffix`` with HTTP 400.
"""

from __future__ import annotations

DEEPSEEK_SENTINELS = ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")
STARCODER_SENTINELS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


def codemill_sentinels() -> tuple[str, str, str]:
    """The FIM sentinels codemill trains with (begin, hole, end).

    The one place that knows where they are defined, so pack's module stays the single
    source of truth once it exists.
    """
    try:
        from codemill.pack.fim import FIM_BEGIN, FIM_END, FIM_HOLE
    except ImportError:
        return DEEPSEEK_SENTINELS
    return FIM_BEGIN, FIM_HOLE, FIM_END


class NoFimSentinels(ValueError):
    """The model's tokenizer has no fill-in-the-middle sentinels."""


def _single_token_id(tokenizer, token: str) -> int | None:
    ids = tokenizer.convert_tokens_to_ids([token])
    if not ids or ids[0] is None or tokenizer.convert_ids_to_tokens(ids[0]) != token:
        return None
    return ids[0]


def find_sentinel_ids(tokenizer) -> tuple[int, int, int] | None:
    """Ids of the first sentinel family whose three tokens are all atomic in this tokenizer."""
    for family in (codemill_sentinels(), DEEPSEEK_SENTINELS, STARCODER_SENTINELS):
        ids = [_single_token_id(tokenizer, t) for t in family]
        if all(i is not None for i in ids):
            return ids[0], ids[1], ids[2]
    return None


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer's own post-processor starts every text with BOS."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("x").input_ids[:1] == [bos]


class PromptBuilder:
    """Turns a request's ``prompt`` and optional ``suffix`` into the ids the model reads."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.sentinels = find_sentinel_ids(tokenizer)
        self.prefix_ids = [tokenizer.bos_token_id] if _adds_bos(tokenizer) else []

    @property
    def supports_fim(self) -> bool:
        return self.sentinels is not None

    def encode_text(self, text: str) -> list[int]:
        if not text:
            return []
        return self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)

    def build(self, prompt: str, suffix: str | None = None) -> list[int]:
        if suffix is None:
            return self.prefix_ids + self.encode_text(prompt)
        if self.sentinels is None:
            raise NoFimSentinels("this model's tokenizer has no fill-in-the-middle sentinels")
        begin, hole, end = self.sentinels
        return (self.prefix_ids + [begin] + self.encode_text(prompt)
                + [hole] + self.encode_text(suffix) + [end])

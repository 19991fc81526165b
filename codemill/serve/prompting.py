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

Chat prompts are the model's own chat template (``tokenizer.apply_chat_template`` with
the generation prompt), held to the same rule: the template's special tokens are special,
text inside a message is text, so a user who writes ``<|im_end|>`` cannot close their turn
and forge an assistant's. The template is rendered with a placeholder per message, its
pieces are tokenized with special tokens and the messages with ``split_special_tokens``.
Chat generation also ends at the model's end-of-turn token (``<|im_end|>``, ``<|EOT|>``,
...), which chat-tuned models emit before (or instead of) their end-of-sequence token.
"""

from __future__ import annotations

import logging
import secrets

from codemill.fim import DEEPSEEK_SENTINELS, STARCODER_SENTINELS
from codemill.fim import sentinels as codemill_sentinels

log = logging.getLogger("codemill.serve")

__all__ = ["DEEPSEEK_SENTINELS", "STARCODER_SENTINELS", "NoFimSentinels", "PromptBuilder", "codemill_sentinels"]


END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|EOT|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


class NoFimSentinels(ValueError):
    """The model's tokenizer has no fill-in-the-middle sentinels."""


class NoChatTemplate(ValueError):
    """The model's tokenizer has no chat template."""


class ChatTemplateError(ValueError):
    """The chat template refused the messages (e.g. roles that do not alternate)."""


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
        found = (_single_token_id(tokenizer, t) for t in END_OF_TURN_TOKENS)
        self.end_of_turn_ids = frozenset(i for i in found if i is not None)

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
        return self.prefix_ids + [begin] + self.encode_text(prompt) + [hole] + self.encode_text(suffix) + [end]

    @property
    def supports_chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _render(self, messages: list[dict]) -> str:
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # jinja's TemplateError, or raise_exception() inside the template
            raise ChatTemplateError(f"the model's chat template refused the messages: {e}") from e

    def chat(self, messages: list[dict]) -> list[int]:
        """The ids of ``messages`` through the model's chat template, ending with the assistant's turn opening."""
        if not self.supports_chat:
            raise NoChatTemplate("this model has no chat template (its tokenizer_config.json sets no chat_template)")
        marks = [f"@@codemill-{secrets.token_hex(8)}-{i}@@" for i in range(len(messages))]
        text = self._render([{**m, "content": mark} for m, mark in zip(messages, marks)])
        pieces, rest = [], text
        for mark in marks:
            before, found, rest = rest.partition(mark)
            if not found or mark in rest:
                break
            pieces.append(before)
        else:
            ids = []
            for piece, message in zip(pieces, messages):
                ids += self.tokenizer.encode(piece, add_special_tokens=False)
                ids += self.encode_text(message["content"])
            return ids + self.tokenizer.encode(rest, add_special_tokens=False)
        # The template rewrites or repeats content: use its text as is (special-looking text then stays special).
        log.warning("chat template does not place each message's content once; tokenizing its output as a whole")
        return self.tokenizer.encode(self._render(messages), add_special_tokens=False)

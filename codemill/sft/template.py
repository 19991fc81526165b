"""The chat template, and examples as token ids with labels only on assistant tokens.

A base model's own chat template is kept. One without (the tiny models ``codemill train``
makes, most pretrained bases) gets ChatML, the template Qwen and many open chat models
use, with ``<|im_start|>``/``<|im_end|>`` added as special tokens; the template is saved
with the tokenizer, so ``apply_chat_template`` works wherever ``model/`` is loaded.

Which tokens carry loss is computed from the template itself, not from
``{% generation %}`` markers (few templates have them): the text of assistant turn ``i``
is what rendering ``messages[:i+1]`` adds to rendering ``messages[:i]`` with the
generation prompt. That span holds the reply and the template's end-of-turn text
(``<|im_end|>``), so the model learns to stop; the system and user turns, the role
headers and the generation prompt get label -100. Tokens are mapped to spans by their
character offsets in the whole rendered text, so the ids are exactly what the tokenizer
gives for the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from codemill.stage import InputError

IGNORE = -100
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


def ensure_chat_template(tokenizer) -> str:
    """Install ChatML when the tokenizer has no template; returns "base" or "chatml".

    The caller resizes the model's embeddings to ``len(tokenizer)`` afterwards."""
    if tokenizer.chat_template:
        return "base"
    tokenizer.add_special_tokens({"additional_special_tokens": list(CHATML_TOKENS)})
    tokenizer.chat_template = CHATML
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or CHATML_TOKENS[1]
    return "chatml"


def end_of_turn_ids(tokenizer) -> list[int]:
    """Ids generation should stop at: EOS, and ``<|im_end|>`` when the vocabulary has it."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    im_end = tokenizer.convert_tokens_to_ids(CHATML_TOKENS[1])
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id and im_end not in ids:
        ids.append(im_end)
    return ids


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def assistant_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    text = render(tokenizer, messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        upto = render(tokenizer, messages[: i + 1])
        if not upto.startswith(before) or not text.startswith(upto):
            raise InputError(
                "the chat template does not render a conversation as the concatenation of its "
                "turns, so assistant tokens cannot be located; use a base with another template"
            )
        spans.append((len(before), len(upto)))
    return text, spans


def encode(tokenizer, messages: list[dict], seq_len: int) -> Encoded:
    """Token ids of the rendered conversation and labels that are -100 outside assistant spans.

    Ids beyond ``seq_len`` are cut (``truncated``)."""
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    bos = tokenizer.bos_token_id
    if bos is not None and not text.startswith(tokenizer.bos_token or "\0") and (not ids or ids[0] != bos):
        ids, offsets = [bos] + ids, [(0, 0)] + offsets  # templates without BOS: the model was pretrained with it
    labels = [tid if _inside(start, end, spans) else IGNORE for tid, (start, end) in zip(ids, offsets)]
    truncated = len(ids) > seq_len
    return Encoded(ids[:seq_len], labels[:seq_len], truncated)


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    # a token is the assistant's when it starts inside an assistant span (a BPE token never
    # straddles the header's newline and the reply in practice; when it does, it goes with its start)
    return end > start and any(a <= start < b for a, b in spans)

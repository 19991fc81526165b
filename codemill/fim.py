"""The fill-in-the-middle contract between pack, train, evaluate and serve: one home.

DeepSeek-Coder's real sentinels use fullwidth bars and U+2581 (the paper prints other
names; docs/pack.md). They are atomic special tokens of codemill's tokenizer; the same
text inside a source file stays ordinary text. Inference prompts use the PSM layout the
model was trained on::

    <｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>   -> the model writes the middle, then EOS

StarCoder's sentinels are listed so a StarCoder-family model can be served with FIM too.
"""

from __future__ import annotations

FIM_BEGIN = "<｜fim▁begin｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_END = "<｜fim▁end｜>"

DEEPSEEK_SENTINELS = (FIM_BEGIN, FIM_HOLE, FIM_END)
STARCODER_SENTINELS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


def sentinels() -> tuple[str, str, str]:
    """(begin, hole, end) in PSM order: ``begin prefix hole suffix end middle``."""
    return DEEPSEEK_SENTINELS


def psm_prompt(prefix: str, suffix: str) -> str:
    """The PSM inference prompt as text; the model answers with the middle, then EOS."""
    return f"{FIM_BEGIN}{prefix}{FIM_HOLE}{suffix}{FIM_END}"

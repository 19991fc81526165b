"""Fill-In-the-Middle layouts, shared by pack (training data), evaluate and serve (prompts).

DeepSeek-Coder's sentinels use fullwidth bars (U+FF5C) and U+2581, and are atomic
special tokens. Two layouts are trained jointly (Bavarian et al. 2022; StarCoder):

- PSM: ``<｜fim▁begin｜>prefix<｜fim▁hole｜>suffix<｜fim▁end｜>middle<eos>``
- SPM: ``<｜fim▁begin｜><｜fim▁hole｜>suffix<｜fim▁end｜>prefix middle<eos>``
  (prefix and middle are contiguous, so the model continues the prefix into the middle).

Every training unit also starts with BOS, and the saved tokenizer adds BOS when it
encodes, so ``tokenizer(psm_prompt(prefix, suffix))`` gives exactly the token layout
the model was trained on, up to where the middle starts.

Prompts built as strings let the sentinel text inside ``prefix``/``suffix`` become
special tokens when the tokenizer parses them; the inference paths build the same prompt
from ids instead, with the code encoded as plain text (serve's ``PromptBuilder.build``,
evaluate's ``encode_fim``, which also truncates to the context).
"""

from __future__ import annotations

from collections.abc import Sequence

from codemill.fim import FIM_BEGIN, FIM_END, FIM_HOLE, psm_prompt  # the contract's one home

PLAIN, PSM, SPM = "plain", "psm", "spm"
FORMATS = (PLAIN, PSM, SPM)


__all__ = ["FIM_BEGIN", "FIM_END", "FIM_HOLE", "FORMATS", "PLAIN", "PSM", "SPM", "psm_prompt"]


def psm_layout(
    begin: int, hole: int, end: int, prefix: Sequence[int], middle: Sequence[int], suffix: Sequence[int]
) -> list[int]:
    """Token layout of a PSM training example (without BOS/EOS)."""
    return [begin, *prefix, hole, *suffix, end, *middle]


def spm_layout(
    begin: int, hole: int, end: int, prefix: Sequence[int], middle: Sequence[int], suffix: Sequence[int]
) -> list[int]:
    """Token layout of an SPM training example (without BOS/EOS)."""
    return [begin, hole, *suffix, end, *prefix, *middle]


def split_fim_ids(
    ids: Sequence[int], fmt: str, begin: int, hole: int, end: int
) -> tuple[list[int], list[int], list[int]]:
    """(prefix, middle, suffix) ids of one FIM example (BOS/EOS already removed).

    Split on sentinel ids, not decoded text: sentinel text inside code is plain tokens.
    SPM cannot tell where the prefix ends and the middle starts; its prefix comes back
    empty and the middle holds both, which still reassembles the original text.
    """
    ids = list(ids)
    if fmt == PSM:
        if ids[:1] != [begin]:
            raise ValueError("PSM example does not start with the FIM begin sentinel")
        h, e = ids.index(hole), ids.index(end)
        return ids[1:h], ids[e + 1 :], ids[h + 1 : e]
    if fmt == SPM:
        if ids[:2] != [begin, hole]:
            raise ValueError("SPM example does not start with the FIM begin and hole sentinels")
        e = ids.index(end)
        return [], ids[e + 1 :], ids[2:e]
    raise ValueError(f"not a FIM format: {fmt!r}")

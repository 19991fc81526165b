"""The sft stage: instruction-tune a base model on chat examples (synth's data, tasks' generate tasks).

``sft(config, model, data, output, tracker)`` runs the whole stage (``train.py`` reads top
to bottom, with the local and cluster commands); ``sft_step`` is the step the runner calls.
Heavy imports (torch, transformers, trl) load on first use, so ``codemill --help`` stays fast.
"""

from __future__ import annotations

from codemill.sft.config import SftConfig, load_preset, preset_names, resolve

__all__ = ["SftConfig", "SftInterrupted", "load_preset", "preset_names", "resolve", "sft"]


def __getattr__(name):
    if name in ("sft", "SftInterrupted"):
        from codemill.sft import train

        return getattr(train, name)
    raise AttributeError(f"module 'codemill.sft' has no attribute {name!r}")

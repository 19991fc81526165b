"""The sft stage's step, as the step runner (:mod:`codemill.runner`) calls it."""

from __future__ import annotations

from codemill.runner import Context
from codemill.sft.config import SftConfig


def sft_step(config: SftConfig, ctx: Context) -> dict:
    """Fine-tune input ``model`` on input ``data`` (comma-separated folders) into the output."""
    from codemill.sft.train import sft

    return sft(
        config,
        ctx.input("model"),
        ctx.input("data"),
        ctx.output,
        ctx.tracker,
        registry_uri=ctx.inputs.get("registry_uri", ""),
    )

"""The serve stage's pipeline step (gate, registry, rollout, smoke), as the step runner calls it.

``codemill serve`` itself (the long-running server) is a service, not a step.
"""

from __future__ import annotations

from codemill.runner import Context


def rollout_step(config, ctx: Context) -> dict:
    from codemill.serve.rollout import rollout

    return rollout(
        config,
        ctx.inputs.get("model", ""),
        ctx.input("eval_dir"),
        ctx.inputs.get("train_dir", ""),
        ctx.output,
        ctx.tracker,
    )

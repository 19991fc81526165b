"""The evaluate stage's steps, as the step runner (:mod:`codemill.runner`) calls them."""

from __future__ import annotations

from codemill.evaluate.config import EvalConfig
from codemill.runner import Context


def generate_step(config: EvalConfig, ctx: Context) -> dict:
    """The GPU step: completions and held-out metrics with the model at input ``model``."""
    from codemill.evaluate.generate_step import generate

    return generate(
        config,
        ctx.input("model"),
        ctx.inputs.get("pack", ""),
        ctx.output,
        ctx.tracker,
        tasks_url=ctx.inputs.get("tasks", ""),
    )


def score_step(config: EvalConfig, ctx: Context) -> dict:
    """The CPU step: run what generate wrote in the sandbox, then the metrics and report."""
    from codemill.evaluate.score_step import score

    return score(config, ctx.output, ctx.tracker)


def samples_step(config: EvalConfig, ctx: Context) -> dict:
    """Score a samples file (``{task_id, completion}`` rows) from any generator."""
    if ctx.input("benchmark") == "tasks":  # mined tasks have their own scorer (codemill.tasks.score)
        from codemill.tasks.evaluate import score_samples as score_tasks

        return score_tasks(config, ctx.input("samples"), ctx.inputs.get("tasks", ""), ctx.output, ctx.tracker)
    from codemill.evaluate.score_step import score_samples

    return score_samples(config, ctx.input("samples"), ctx.input("benchmark"), ctx.output, ctx.tracker)

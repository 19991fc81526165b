"""The rl stage: GRPO-family RL (TRL's loss names) with rewards executed in the sandbox.

``codemill rl --model M --tasks DIR --output DIR`` (``loop.py`` has the local and
``torchrun`` commands). Modules: ``config`` (RLConfig), ``data`` (tasks and stdin/stdout
problems, decontaminated), ``reward`` (the one scorer, run concurrently), ``_policy``
(sampling, token log-probs), ``_loss`` (advantages, zero-variance filter, grpo/dapo/
dr_grpo/cispo), ``_pool`` (no-positive-resampling, difficulty filter), ``_fit`` (ScaleRL's
sigmoid), ``_step`` (one step), ``_loop`` (the run, checkpoints), ``_report``, ``launch``
(torchrun / TrainJob). Heavy imports load on first use.
"""

from __future__ import annotations

from codemill.rl.config import RLConfig

__all__ = ["RLConfig", "run", "run_step"]


def __getattr__(name):
    if name == "run":
        from codemill.rl.loop import run

        return run
    if name == "run_step":
        from codemill.rl.launch import run_step

        return run_step
    raise AttributeError(f"module 'codemill.rl' has no attribute {name!r}")

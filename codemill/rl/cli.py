"""``codemill rl``: a thin face over the ``rl`` step (:mod:`codemill.rl.loop`).

Under ``torchrun`` every rank runs this command; only rank 0 opens an MLflow run.
Exit status: 0 done, 2 bad input or configuration, 143 stopped by SIGTERM after writing a
checkpoint (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import os

from codemill.cli import add_tracking_args
from codemill.rl.config import RLConfig
from codemill.stage import add_config_args, config_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rl",
        help="GRPO-family RL on sandbox-executed rewards (tasks stage prompts, stdin/stdout problems)",
        description="RL from a Hugging Face model on the tasks stage's prompts and/or stdin/stdout problems; "
        "rewards run in the sandbox. docs/rl.md.",
    )
    p.add_argument(
        "--model", required=True, help="starting model: a Hugging Face folder (sft's model/), local or s3://"
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="the tasks stage's output folder (tasks/*.parquet); optional with "
        "--problems; without both the bundled problems are used",
    )
    p.add_argument("--output", required=True, help="where model/, rollouts/, checkpoints/, stats.json and report.md go")
    add_config_args(p, RLConfig)
    add_tracking_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from codemill import runner
    from codemill.train.loop import TrainingInterrupted

    config = config_from_args(RLConfig, args)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    try:
        stats = runner.run_tracked(
            "rl",
            config,
            output=args.output,
            tracking_uri=args.tracking_uri,
            parent_run_id=args.parent_run_id,
            enabled=rank0 and not args.no_tracking,
            model=args.model,
            tasks=args.tasks,
        )
    except TrainingInterrupted as e:
        print(f"stopped: {e}", flush=True)
        return 143
    if rank0:
        print(
            json.dumps(
                {
                    k: stats.get(k)
                    for k in ("steps", "pass_rate_first", "pass_rate_last", "zero_variance_groups", "retired_tasks")
                }
            )
        )
    return 0

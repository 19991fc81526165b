"""``codemill tasks``: the CLI face of the ``tasks-shard`` and ``tasks-finish`` steps.

    codemill tasks --input runs/x/dedup --output runs/x/tasks --no-tracking
    codemill tasks --input runs/x/dedup --output runs/x/tasks --kinds generate,output --max-tasks 500

With ``--world-size 1`` (the default) it does the one shard, then the finish. With
``--world-size N`` each ``--rank R`` does its shard (``--step shard``), and ``--step
finish`` merges them once every shard is done::

    codemill tasks --step shard --input IN --output OUT --rank R --world-size N   # each R
    codemill tasks --step finish --output OUT --world-size N
"""

from __future__ import annotations

import argparse
import json

from codemill import stage

STEPS = ("all", "shard", "finish")


def _kinds(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args
    from codemill.tasks.config import KINDS, TasksConfig

    p = sub.add_parser(
        "tasks",
        help="mine execution-verified tasks (generate / output / input prediction) from the corpus",
        description="Turn the corpus's documented, pure top-level Python functions into tasks whose answers "
        "are checked by running code: inputs from doctests and literal calls in the same repository, "
        "expected outputs from running the reference in the sandbox. Writes tasks/*.parquet, "
        "quarantine/*.parquet, stats.json and report.md.",
    )
    p.add_argument(
        "--input",
        default="",
        help="dedup's (or validate's) output folder (files/*.parquet), or a "
        "Parquet URL/glob; needed by the all and shard steps",
    )
    p.add_argument("--output", required=True, help="the stage's output folder URL (local path or s3://)")
    p.add_argument(
        "--step",
        choices=STEPS,
        default="all",
        help="shard: this rank's repositories; finish: dedup, tasks and report; all: the shard, "
        "then the finish when --world-size is 1 (default: all)",
    )
    p.add_argument(
        "--kinds",
        type=_kinds,
        default=argparse.SUPPRESS,
        metavar="KIND[,KIND]",
        help=f"comma-separated task kinds, of {','.join(KINDS)} (default: all three)",
    )
    stage.add_config_args(p, TasksConfig, skip=("seed", "kinds"))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=cmd_tasks, parser=p)


def cmd_tasks(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps
    from codemill.tasks.config import TasksConfig

    config = stage.config_from_args(TasksConfig, args).ensure_valid()
    if args.step in ("all", "shard") and not args.input:
        args.parser.error(f"--step {args.step} needs --input")
    plan: list = []
    if args.step in ("all", "shard"):
        plan.append(("tasks-shard", config, {"input": args.input}))
    if args.step == "finish" or (args.step == "all" and args.world_size == 1):
        plan.append(("tasks-finish", config, {}))
    stats = run_steps(args, plan)
    keys = ("candidates", "functions_kept", "quarantined", "tasks", "by_kind", "by_reason", "examples_disagreeing")
    print(json.dumps({k: stats[k] for k in keys if k in stats}, indent=2, sort_keys=True))
    print(f"output: {args.output}")
    return 0

"""``codemill validate``: the CLI face of the ``validate-shard`` and ``validate-finish`` steps.

With ``--world-size 1`` (the default) it validates the whole source and merges; with
``--world-size N --rank R`` it validates shard R only; ``--step finish`` (or ``--finish``)
merges the shards after all of them ran::

    codemill validate --source site-packages --output runs/v --max-repos 40 --no-tracking
    codemill validate --source 'data/*.jsonl' --output runs/v --world-size 2 --rank 0
    codemill validate --source 'data/*.jsonl' --output runs/v --world-size 2 --rank 1
    codemill validate --output runs/v --world-size 2 --finish
"""

from __future__ import annotations

import argparse
import json

from codemill import stage

STEPS = ("all", "shard", "finish")


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args
    from codemill.validate.config import ValidateConfig

    p = sub.add_parser(
        "validate",
        help="read source repositories, keep clean files, quarantine the rest",
        description="Validate a source (site-packages, a folder of repositories, or JSONL/Parquet files in "
        "The Stack's layout): quarantine bad records with a reason, apply the DeepSeek-Coder "
        "quality filters, decontaminate against benchmarks, redact secrets.",
    )
    p.add_argument(
        "--source",
        default=None,
        help="'site-packages', a folder whose subfolders are repositories, or JSONL/Parquet URL(s) "
        "(local or s3://, globs allowed); required unless --step finish",
    )
    p.add_argument("--output", required=True, help="output folder URL (local or s3://), shared by all shards")
    p.add_argument(
        "--step",
        choices=STEPS,
        default="all",
        help="one step (shard: validate this rank's shard; finish: merge the shards) or all: "
        "this rank's shard, then the merge when --world-size is 1 (default: all)",
    )
    p.add_argument("--finish", action="store_true", help="the same as --step finish")
    config_group = p.add_argument_group("validate settings")
    stage.add_config_args(config_group, ValidateConfig, skip=("seed",))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps
    from codemill.validate import ValidateConfig

    step = "finish" if args.finish else args.step
    plan: list = []
    if step in ("all", "shard"):
        if not args.source:
            raise stage.InputError("validate: --source is required (unless --step finish)")
        plan.append(("validate-shard", stage.config_from_args(ValidateConfig, args), {"source": args.source}))
    if step == "finish" or (step == "all" and args.world_size == 1):
        plan.append(("validate-finish", None, {}))
    stats = run_steps(args, plan)
    keys = ("input_records", "kept", "quarantined", "by_reason", "invariant_ok")
    print(json.dumps({k: stats[k] for k in keys if k in stats}, sort_keys=True))
    print(f"output: {args.output}")
    return 0

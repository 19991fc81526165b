"""``codemill validate``: the CLI face of :func:`codemill.validate.run_shard` / ``finish``.

With ``--world-size 1`` (the default) it validates the whole source and merges; with
``--world-size N --rank R`` it validates shard R only; ``--finish`` merges the shards
after all of them ran::

    codemill validate --source site-packages --output runs/v --max-repos 40 --no-tracking
    codemill validate --source 'data/*.jsonl' --output runs/v --world-size 2 --rank 0
    codemill validate --source 'data/*.jsonl' --output runs/v --world-size 2 --rank 1
    codemill validate --output runs/v --world-size 2 --finish
"""

from __future__ import annotations

import argparse
import json

from codemill import stage


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args
    from codemill.validate._config import ValidateConfig

    p = sub.add_parser(
        "validate", help="read source repositories, keep clean files, quarantine the rest",
        description="Validate a source (site-packages, a folder of repositories, or JSONL/Parquet files in "
                    "The Stack's layout): quarantine bad records with a reason, apply the DeepSeek-Coder "
                    "quality filters, decontaminate against benchmarks, redact secrets.")
    p.add_argument("--source", default=None,
                   help="'site-packages', a folder whose subfolders are repositories, or JSONL/Parquet URL(s) "
                        "(local or s3://, globs allowed); required unless --finish")
    p.add_argument("--output", required=True, help="output folder URL (local or s3://), shared by all shards")
    p.add_argument("--finish", action="store_true",
                   help="only merge the shards' stats (after every shard ran), check the invariant, write the report")
    config_group = p.add_argument_group("validate settings")
    stage.add_config_args(config_group, ValidateConfig, skip=("seed",))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from codemill.cli import stage_tracker
    from codemill.validate import ValidateConfig, finish, run_shard

    if args.finish:
        with stage_tracker(args, "validate") as tracker:
            stats = finish(args.output, args.world_size, tracker)
        return _print_summary(args.output, stats)
    if not args.source:
        raise stage.InputError("validate: --source is required (unless --finish)")
    config = stage.config_from_args(ValidateConfig, args)
    name = "validate" if args.world_size == 1 else f"validate-{args.rank}"
    with stage_tracker(args, name) as tracker:
        stats = run_shard(config, args.source, args.output, args.rank, args.world_size, tracker)
        if args.world_size == 1:
            stats = finish(args.output, 1, tracker)
    return _print_summary(args.output, stats)


def _print_summary(output: str, stats: dict) -> int:
    keys = ("input_records", "kept", "quarantined", "by_reason", "invariant_ok")
    print(json.dumps({k: stats[k] for k in keys if k in stats}, sort_keys=True))
    print(f"output: {output}")
    return 0

"""``codemill pack`` and ``codemill inspect``: thin faces of :mod:`codemill.pack`."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args
    from codemill.pack import STEPS, PackConfig
    from codemill.stage import add_config_args

    p = sub.add_parser(
        "pack",
        help="tokenizer + dependency-ordered, FIM, packed token sequences",
        description="Order each repository's files by their imports, train (or reuse) a "
        "byte-level BPE tokenizer, apply Fill-In-the-Middle and pack fixed-length "
        "sequences for training, holding out repositories for validation.",
    )
    p.add_argument(
        "--input", required=True, help="dedup's output folder (its files/*.parquet), or a Parquet URL or glob"
    )
    p.add_argument("--output", required=True, help="the pack output folder (local path or s3://)")
    p.add_argument(
        "--step",
        choices=STEPS,
        default="all",
        help="run one step (tokenizer, shard, finish) or all this rank can do (default: all)",
    )
    add_config_args(p, PackConfig, skip=("seed",))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=cmd_pack)

    i = sub.add_parser(
        "inspect",
        help="decode a pack output back to documents",
        description="Print the units of a pack output as the model is fed them: repository, "
        "language, format (plain/psm/spm) and the decoded text.",
    )
    i.add_argument("directory", metavar="DIR", help="a pack output folder (local path or s3://)")
    i.add_argument("--limit", type=int, default=10, help="how many units to print; 0 means all (default: 10)")
    i.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    i.add_argument("--split", choices=("train", "val"), default="train", help="which split (default: train)")
    i.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("plain", "psm", "spm"),
        help="only units of this format (repeatable)",
    )
    i.set_defaults(func=cmd_inspect)


def cmd_pack(args: argparse.Namespace) -> int:
    from codemill import stage
    from codemill.cli import run_steps
    from codemill.pack import PackConfig

    config = stage.config_from_args(PackConfig, args)
    inputs = {"input": args.input}
    plan: list = []
    if args.step in ("all", "tokenizer"):
        plan.append(("pack-tokenizer", config, inputs))
    if args.step in ("all", "shard"):
        plan.append(("pack-shard", config, inputs))
    result = run_steps(args, plan)
    if args.step == "finish" or (
        args.step == "all"
        and all(stage.shard_done(args.output, "pack", r, args.world_size) for r in range(args.world_size))
    ):
        result = run_steps(args, [("pack-finish", None, {})])
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, sort_keys=True))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from codemill.pack import iter_units

    units = iter_units(args.directory, args.split, args.limit or None, tuple(args.formats or ()))
    for unit in units:
        if args.json:
            print(json.dumps(unit))
        else:
            print(
                f"=== {unit['repo']} | {unit['language']} | {unit['format']} | sequence {unit['sequence']} "
                f"@ {unit['start']} | {unit['length']} tokens"
            )
            print(unit["text"])
        sys.stdout.flush()
    return 0

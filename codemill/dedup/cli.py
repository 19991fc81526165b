"""``codemill dedup``: the dedup stage's four steps from the command line.

    codemill dedup --input runs/x/validate --output runs/x/dedup --no-tracking

runs all four steps in one process. With ``--world-size N`` each step can run alone, the
way the pipeline fans it out::

    codemill dedup --step signature --input IN --output OUT --rank R --world-size N   # each R
    codemill dedup --step cluster --output OUT --world-size N
    codemill dedup --step write --input IN --output OUT --rank R --world-size N       # each R
    codemill dedup --step finish --output OUT --world-size N

(``--phase`` is the older name of ``--step``.)
"""

from __future__ import annotations

import argparse
import json

from codemill import stage
from codemill.dedup import DedupConfig

PHASES = ("all", "signature", "cluster", "write", "finish")


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args

    p = sub.add_parser(
        "dedup",
        help="near-dedup repositories, then exact-dedup files",
        description="Repository-level MinHash LSH near-dedup (a cluster keeps its most complete repository "
        "whole), then exact file dedup across the surviving repositories. Writes files/, "
        "clusters.parquet, exact_duplicates.parquet, stats.json and report.md.",
    )
    p.add_argument(
        "--input",
        default="",
        help="validate's output folder (files/*.parquet), or a Parquet URL/glob; "
        "needed by the all, signature and write steps",
    )
    p.add_argument("--output", required=True, help="the stage's output folder URL (local path or s3://)")
    p.add_argument(
        "--step",
        "--phase",
        dest="phase",
        choices=PHASES,
        default="all",
        help="run one step for one rank, or all steps in this process (default: all)",
    )
    stage.add_config_args(p, DedupConfig, skip=("seed",))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=_main, parser=p)


def _main(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps

    config = stage.config_from_args(DedupConfig, args).ensure_valid()
    if args.phase in ("all", "signature", "write") and not args.input:
        args.parser.error(f"--step {args.phase} needs --input")  # a usage error: exit 2 before any work
    if args.phase == "all" and args.rank != 0:
        raise stage.InputError(f"dedup --step all does every shard itself; use --rank 0, not {args.rank}")
    shards = range(args.world_size) if args.phase == "all" else [args.rank]
    inputs = {"input": args.input}
    plan: list = []
    if args.phase in ("all", "signature"):
        plan += [("dedup-signature", config, inputs, r) for r in shards]
    if args.phase in ("all", "cluster"):
        plan.append(("dedup-cluster", config, {}, 0))
    if args.phase in ("all", "write"):
        plan += [("dedup-write", config, inputs, r) for r in shards]
    if args.phase in ("all", "finish"):
        plan.append(("dedup-finish", None, {}, 0))
    result: dict = {}
    for name, cfg, inp, rank in plan:
        args.rank = rank
        result = run_steps(args, [(name, cfg, inp)])
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0

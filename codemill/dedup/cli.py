"""``codemill dedup``: the dedup stage from the command line.

    codemill dedup --input runs/x/validate --output runs/x/dedup --no-tracking

runs all four steps in one process. With ``--world-size N`` each step can run alone, the
way the pipeline fans it out::

    codemill dedup --phase signature --input IN --output OUT --rank R --world-size N   # each R
    codemill dedup --phase cluster --output OUT --world-size N
    codemill dedup --phase write --input IN --output OUT --rank R --world-size N       # each R
    codemill dedup --phase finish --output OUT --world-size N
"""

from __future__ import annotations

import argparse
import json

from codemill import stage
from codemill.dedup import DedupConfig, cluster, finish, run, signature_shard, write_shard

PHASES = ("all", "signature", "cluster", "write", "finish")


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_shard_args, add_tracking_args, stage_tracker

    p = sub.add_parser(
        "dedup", help="near-dedup repositories, then exact-dedup files",
        description="Repository-level MinHash LSH near-dedup (a cluster keeps its most complete repository "
                    "whole), then exact file dedup across the surviving repositories. Writes files/, "
                    "clusters.parquet, exact_duplicates.parquet, stats.json and report.md.")
    p.add_argument("--input", default="", help="validate's output folder (files/*.parquet), or a Parquet URL/glob; "
                                               "needed by the all, signature and write phases")
    p.add_argument("--output", required=True, help="the stage's output folder URL (local path or s3://)")
    p.add_argument("--phase", choices=PHASES, default="all",
                   help="run one step for one rank, or all steps in this process (default: all)")
    stage.add_config_args(p, DedupConfig, skip=("seed",))  # --seed comes with the shard flags
    add_shard_args(p)
    add_tracking_args(p)
    p.set_defaults(func=lambda args: _main(args, stage_tracker))


def _main(args: argparse.Namespace, stage_tracker) -> int:
    config = stage.config_from_args(DedupConfig, args).ensure_valid()
    if args.phase in ("all", "signature", "write") and not args.input:
        stage.fail(f"dedup --phase {args.phase} needs --input")
    name = "dedup" if args.phase in ("all", "finish", "cluster") else f"dedup-{args.phase}-{args.rank}"
    with stage_tracker(args, name) as tracker:
        if args.phase == "all":
            result = run(config, args.input, args.output, args.rank, args.world_size, tracker)
        elif args.phase == "signature":
            result = signature_shard(config, args.input, args.output, args.rank, args.world_size, tracker)
        elif args.phase == "cluster":
            result = cluster(config, args.output, args.world_size, tracker)
        elif args.phase == "write":
            result = write_shard(config, args.input, args.output, args.rank, args.world_size, tracker)
        else:
            result = finish(args.output, args.world_size, tracker)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0

"""``codemill synth``: a thin face over the ``synth`` step (docs/synth.md).

    codemill synth --mode oss-instruct --input DEDUP_DIR --output DIR --teacher-url URL [--max-samples N]
    codemill synth --mode distill --tasks TASKS_DIR [--problems FILE] --samples-per-task K --output DIR \\
        --teacher-url URL

Exit status: 0 done (or skipped without a teacher URL), 2 bad input or a teacher that
cannot answer (the message names the URL).
"""

from __future__ import annotations

import argparse
import json

from codemill.cli import add_tracking_args
from codemill.stage import add_config_args, config_from_args
from codemill.synth.config import SynthConfig

SHOWN = (
    "mode",
    "skipped",
    "requested",
    "answered",
    "kept",
    "quarantined",
    "by_reason",
    "acceptance_rate",
    "http_requests",
    "cache_hits",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="teacher-written instruction data and distillation, kept only when execution verifies it",
        description="oss-instruct: problems, solutions and tests written from corpus seeds; distill: answers to "
        "mined tasks or stdin/stdout problems. Every answer is run in the sandbox before it is kept.",
    )
    p.add_argument("--input", default="", help="oss-instruct: dedup's (or validate's) output folder (files/*.parquet)")
    p.add_argument("--tasks", default="", help="distill: the tasks stage's output folder (tasks/*.parquet)")
    p.add_argument("--problems", default="", help="distill: stdin/stdout problems, LiveCodeBench or rStar-Coder JSONL")
    p.add_argument("--output", required=True, help="where data/, quarantine/, stats.json, report.md go")
    p.add_argument("--seed", type=int, default=0, help="random seed (seeds, request seeds, MinHash) (default: 0)")
    add_config_args(p, SynthConfig)
    add_tracking_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps

    config = config_from_args(SynthConfig, args)
    inputs = {"input": args.input or None, "tasks": args.tasks or None, "problems": args.problems or None}
    stats = run_steps(args, [("synth", config, inputs)])
    print(json.dumps({k: stats.get(k) for k in SHOWN}))
    return 0

"""``codemill eval``: the evaluate stage from the command line.

codemill eval --model DIR --output DIR [--pack DIR] [--step generate|score]
codemill eval --samples FILE.jsonl --benchmark humaneval --output DIR
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_tracking_args
    from codemill.evaluate.config import SAMPLE_BENCHMARKS, EvalConfig
    from codemill.stage import add_config_args

    p = sub.add_parser(
        "eval",
        help="evaluate a model: HumanEval, infilling, stdio problems, held-out FIM/perplexity",
        description="Generate completions with a model and score them in a sandbox, or score "
        "a samples file (human-eval format) from any generator.",
    )
    p.add_argument("--model", default="", help="trained model directory URL (train's output + /model)")
    p.add_argument("--pack", default="", help="pack's output URL (held-out documents, val tokens); optional")
    p.add_argument("--output", required=True, help="where results.jsonl, metrics.json, report.html go")
    p.add_argument(
        "--step",
        choices=("all", "generate", "score"),
        default="all",
        help="run only the model step or only the sandboxed scoring (default: all)",
    )
    p.add_argument("--samples", default="", help="score this JSONL of {task_id, completion} instead of a model")
    p.add_argument(
        "--benchmark",
        default="humaneval",
        choices=SAMPLE_BENCHMARKS,
        help="benchmark the --samples file answers (default: humaneval); tasks: the tasks at --tasks",
    )
    p.add_argument(
        "--tasks",
        default="",
        help="the tasks stage's output folder: for --benchmark tasks, "
        "or with --model to score its held-out split (pass@1 per kind)",
    )
    add_config_args(p, EvalConfig)
    add_tracking_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps
    from codemill.evaluate import BENCHMARKS, EvalConfig
    from codemill.stage import InputError, config_from_args

    config = config_from_args(EvalConfig, args)
    if not args.samples and not args.model and args.step != "score":
        raise InputError("give --model DIR (or --samples FILE to score a generator's output)")
    if args.samples:
        plan = [
            ("evaluate-samples", config, {"samples": args.samples, "benchmark": args.benchmark, "tasks": args.tasks})
        ]
    else:
        plan = [("evaluate-generate", config, {"model": args.model, "pack": args.pack, "tasks": args.tasks})] * (
            args.step != "score"
        )
        plan += [("evaluate-score", config, {})] * (args.step != "generate")
    stats = run_steps(args, plan)
    if args.samples or args.step != "generate":
        metrics = {k: v for k, v in stats.items() if k in BENCHMARKS or k == "tasks"}
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0

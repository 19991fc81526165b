"""``codemill``: one command, a subcommand per stage, plus ``pipeline``.

Each stage module registers its own subcommand (a thin face over the stage
function); heavy imports (torch, transformers) happen inside the handlers so
``codemill --help`` and the data stages start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from codemill import io, tracking
from codemill.stage import InputError

# Modules with a `register(subparsers)` function, in the order of the DAG.
COMMAND_MODULES = [
    "codemill.validate.cli",
    "codemill.dedup.cli",
    "codemill.tasks.cli",
    "codemill.synth.cli",
    "codemill.pack.cli",
    "codemill.train.cli",
    "codemill.sft.cli",
    "codemill.rl.cli",
    "codemill.evaluate.cli",
    "codemill.verify.cli",
    "codemill.serve.cli",
    "codemill.pipeline_cli",
]


def add_tracking_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("tracking")
    g.add_argument("--no-tracking", action="store_true", help="run without MLflow (nothing is logged)")
    g.add_argument(
        "--tracking-uri",
        default="",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI; unset means no tracking)",
    )
    g.add_argument(
        "--parent-run-id", default="", help="MLflow run to nest this stage's run under (set by the pipeline)"
    )


def add_shard_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("sharding")
    g.add_argument("--rank", type=int, default=0, help="this shard's index, 0 <= rank < world-size (default: 0)")
    g.add_argument("--world-size", type=int, default=1, help="number of shards (default: 1)")
    g.add_argument(
        "--seed", type=int, default=0, help="random seed; same inputs and seed give the same outputs (default: 0)"
    )


def stage_tracker(args: argparse.Namespace, stage: str, tags: dict[str, str] | None = None):
    """The tracking context for a command that is not a pipeline step (``serve``), from the tracking flags."""
    return tracking.stage_run(
        stage, uri=args.tracking_uri, parent_run_id=args.parent_run_id, enabled=not args.no_tracking, tags=tags
    )


def run_steps(args: argparse.Namespace, steps: list[tuple[str, object, dict]]) -> dict:
    """Run ``(step, config, inputs)`` in order through the step runner, each in its own
    MLflow run named as the pipeline names it; returns the last step's stats."""
    from codemill import runner

    stats: dict = {}
    for name, config, inputs in steps:
        stats = runner.from_args(name, config, args, **inputs)
    return stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codemill",
        description="Turn source repositories into a served code model (DeepSeek-Coder recipe).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for leaf in _leaf_parsers(parser):
        if "--no-tracking" not in leaf._option_string_actions:
            # Every command accepts the flag so scripts can pass it everywhere.
            leaf.add_argument(
                "--no-tracking", action="store_true", help="accepted everywhere; this command logs nothing to MLflow"
            )
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaf_parsers(child)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (io.StorageError, tracking.TrackingUnavailable, InputError) as e:
        # Whole-input problems: one clear line naming what is wrong, no traceback
        # (CODEMILL_DEBUG=1 shows it).
        if os.environ.get("CODEMILL_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``codemill train``: a thin face over :func:`codemill.train.train`.

Under ``torchrun`` every rank runs this command; only rank 0 opens an MLflow run.
Exit status: 0 done, 2 bad input or configuration, 143 stopped by SIGTERM after
writing a checkpoint (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import os

from codemill.cli import add_tracking_args
from codemill.stage import add_config_args, config_from_args
from codemill.train.config import TrainConfig, preset_names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a causal LM on pack's shards (tiny on CPU, DeepSeek-Coder shapes on GPUs)",
        description="Train a Hugging Face causal LM on pack's output. Presets: "
        + ", ".join(preset_names())
        + ". Fields left unset (None) come from the preset.",
    )
    p.add_argument("--input", required=True, help="pack's output folder (local path or s3://)")
    p.add_argument("--output", required=True, help="where model/, checkpoints/ and stats.json go")
    add_config_args(p, TrainConfig)
    add_tracking_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from codemill import runner
    from codemill.train.loop import TrainingInterrupted

    config = config_from_args(TrainConfig, args)
    rank0 = int(os.environ.get("RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))) == 0
    try:
        # An interrupted run ends its MLflow run as FAILED; the rerun that resumes opens a new one.
        stats = runner.run_tracked(
            "train",
            config,
            output=args.output,
            tracking_uri=args.tracking_uri,
            parent_run_id=args.parent_run_id,
            enabled=rank0 and not args.no_tracking,
            input=args.input,
        )
    except TrainingInterrupted as e:
        print(f"stopped: {e}", flush=True)
        return 143
    if rank0:
        print(json.dumps({k: stats[k] for k in ("steps", "tokens_per_second", "val_loss_start", "val_loss_end")}))
    return 0

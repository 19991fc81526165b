"""``codemill sft``: a thin face over the ``sft`` step.

Exit status: 0 done, 2 bad input or configuration, 143 stopped by SIGTERM after writing a
checkpoint (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json

from codemill.cli import add_tracking_args
from codemill.sft.config import SftConfig, preset_names
from codemill.stage import add_config_args, config_from_args

SHOWN = ("examples", "assistant_token_fraction", "train_loss_start", "train_loss_end", "val_loss", "tokens_per_second")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sft",
        help="instruction-tune a base model on chat data (synth's data/, tasks' generate tasks)",
        description="Supervised fine-tuning with loss on assistant tokens only. Presets: "
        + ", ".join(preset_names())
        + ". Fields left unset (None) come from the preset.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="base model: a folder, s3://..., models:/NAME@ALIAS (MLflow registry) or a hub id",
    )
    p.add_argument(
        "--data",
        required=True,
        help="comma-separated folders: synth's output (data/*.parquet) and/or tasks' (tasks/*.parquet)",
    )
    p.add_argument("--output", required=True, help="where model/, checkpoints/, stats.json and report.md go")
    add_config_args(p, SftConfig)
    add_tracking_args(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from codemill.cli import run_steps
    from codemill.sft.train import SftInterrupted

    config = config_from_args(SftConfig, args)
    try:
        # the registry is the tracking server: --tracking-uri also resolves models:/ references
        stats = run_steps(
            args, [("sft", config, {"model": args.model, "data": args.data, "registry_uri": args.tracking_uri})]
        )
    except SftInterrupted as e:
        print(f"stopped: {e}", flush=True)
        return 143
    print(json.dumps({k: stats.get(k) for k in SHOWN}))
    return 0

"""How the KFP step runs training: in this process, over this pod's GPUs, or over several nodes.

- ``num_nodes > 1``: a Kubeflow Trainer ``TrainJob`` (:mod:`codemill.train.trainjob`) runs
  ``codemill train`` on every node; this step only waits, then reads ``stats.json``.
- more than one GPU in this pod: ``torchrun --nproc-per-node N -m codemill.cli train …``
  (DDP, or DeepSpeed when the config names one), rank 0 logging to MLflow.
- otherwise (one GPU, or CPU as in ``kfp.local``): :func:`codemill.train.train` in process.
"""

from __future__ import annotations

import os
import subprocess
import sys

from codemill.stage import InputError, read_stats
from codemill.train.config import TrainConfig, config_flags


def train_args(config: TrainConfig, input: str, output: str, tracking_uri: str, parent_run_id: str) -> list[str]:
    args = ["--input", input, "--output", output, *config_flags(config)]
    if tracking_uri:
        args += ["--tracking-uri", tracking_uri]
    if parent_run_id:
        args += ["--parent-run-id", parent_run_id]
    return args


def run_step(
    config: TrainConfig,
    input: str,
    output: str,
    gpu_count: int = 1,
    num_nodes: int = 1,
    node_selector: dict | None = None,
    tolerations: list | None = None,
    tracking_uri: str = "",
    parent_run_id: str = "",
    image: str = "",
    runtime: str = "",
    credentials_secret: str = "",
) -> dict:
    """Train with the resources the step was given; returns the stage's stats."""
    args = train_args(config, input, output, tracking_uri, parent_run_id)
    if num_nodes > 1:
        from codemill.train import trainjob

        if not image:
            raise InputError("num_nodes > 1 launches a TrainJob, which needs the training image; pass image=")
        job = trainjob.manifest(
            trainjob.job_name(output),
            trainjob.current_namespace(),
            image,
            args,
            num_nodes,
            max(gpu_count, 1),
            runtime=runtime or ("deepspeed-distributed" if config.deepspeed else "torch-distributed"),
            node_selector=node_selector,
            tolerations=tolerations,
            credentials_secret=credentials_secret or os.environ.get("CODEMILL_S3_SECRET", ""),
        )
        trainjob.run(job)
        return read_stats(output)

    if torchrun_here("train", args, gpu_count):
        return read_stats(output)
    from codemill import runner

    return runner.run_tracked(
        "train", config, output=output, tracking_uri=tracking_uri, parent_run_id=parent_run_id, input=input
    )


def torchrun_here(command: str, args: list[str], gpu_count: int) -> bool:
    """Run ``codemill COMMAND ARGS`` under torchrun over this pod's GPUs when it was given
    more than one and has them; False (nothing run) otherwise. Shared by train and rl."""
    import torch

    local_gpus = torch.cuda.device_count()
    if gpu_count <= 1 or local_gpus <= 1:
        return False
    nproc = min(gpu_count, local_gpus)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "codemill.cli",
        command,
        *args,
    ]
    print(f"[{command}] " + " ".join(cmd), flush=True)
    code = subprocess.run(cmd, check=False).returncode
    if code != 0:
        raise RuntimeError(f"torchrun over {nproc} GPUs exited with status {code}")
    return True


def train_step(config: TrainConfig, ctx) -> dict:
    """The ``train`` step in this process (``codemill train``, and each torchrun rank)."""
    from codemill.train.loop import train

    return train(config, ctx.input("input"), ctx.output, ctx.tracker)

"""How the rl step runs: in this process, over this pod's GPUs (torchrun), or over several
nodes as a Kubeflow Trainer TrainJob -- the train stage's launcher (:mod:`codemill.train.trainjob`),
reused with ``codemill rl`` as the command every rank runs."""

from __future__ import annotations

import dataclasses

from codemill.rl.config import RLConfig
from codemill.stage import InputError, read_stats


def rl_step(config: RLConfig, ctx) -> dict:
    """The ``rl`` step in this process (``codemill rl``, and each torchrun rank)."""
    from codemill.rl.loop import run

    return run(config, ctx.input("model"), ctx.inputs.get("tasks"), ctx.output, ctx.tracker)


def config_flags(c: RLConfig) -> list[str]:
    """``codemill rl`` flags that reproduce ``c``."""
    flags: list[str] = []
    for key, value in sorted(dataclasses.asdict(c).items()):
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            flags += [flag, *map(str, value)]
        elif value != "":
            flags += [flag, str(value)]
    return flags


def rl_args(
    c: RLConfig, model: str, tasks: str, output: str, tracking_uri: str = "", parent_run_id: str = ""
) -> list[str]:
    args = ["--model", model, "--output", output] + (["--tasks", tasks] if tasks else []) + config_flags(c)
    args += ["--tracking-uri", tracking_uri] if tracking_uri else []
    return args + (["--parent-run-id", parent_run_id] if parent_run_id else [])


def trainjob_manifest(
    c: RLConfig, model: str, tasks: str, output: str, image: str, num_nodes: int, gpus_per_node: int, **kwargs
) -> dict:
    """train's TrainJob with ``codemill rl`` as the entry (torch-distributed runtime)."""
    from codemill.train import trainjob

    name = trainjob.job_name(output).replace("codemill-train-", "codemill-rl-")
    job = trainjob.manifest(
        name, trainjob.current_namespace(), image, rl_args(c, model, tasks, output), num_nodes, gpus_per_node, **kwargs
    )
    command = job["spec"]["trainer"]["command"]
    command[command.index("codemill.cli") + 1] = "rl"
    job["metadata"]["labels"]["codemill.stage"] = "rl"
    return job


def run_step(
    c: RLConfig,
    model: str,
    tasks: str,
    output: str,
    gpu_count: int = 1,
    num_nodes: int = 1,
    node_selector: dict | None = None,
    tolerations: list | None = None,
    tracking_uri: str = "",
    parent_run_id: str = "",
    image: str = "",
    credentials_secret: str = "",
) -> dict:
    """Run rl with the resources the KFP step was given; returns its stats."""
    if num_nodes > 1:
        import os

        from codemill.train import trainjob

        if not image:
            raise InputError("num_nodes > 1 launches a TrainJob, which needs the CUDA image; pass image=")
        job = trainjob_manifest(
            c,
            model,
            tasks,
            output,
            image,
            num_nodes,
            max(gpu_count, 1),
            node_selector=node_selector,
            tolerations=tolerations,
            credentials_secret=credentials_secret or os.environ.get("CODEMILL_S3_SECRET", ""),
        )
        trainjob.run(job)
        return read_stats(output)
    from codemill.train.launch import torchrun_here

    if torchrun_here("rl", rl_args(c, model, tasks, output, tracking_uri, parent_run_id), gpu_count):
        return read_stats(output)
    from codemill import runner

    return runner.run_tracked(
        "rl", c, output=output, tracking_uri=tracking_uri, parent_run_id=parent_run_id, model=model, tasks=tasks or None
    )

"""The faces: CLI errors are one line (exit 2), flags round-trip, the TrainJob is train's
launcher running ``codemill rl``, and the KFP component compiles with GPU settings.

No ``from __future__ import annotations``: kfp reads the pipeline's annotations as types."""

import argparse

import yaml

from codemill.cli import main
from codemill.rl import cli as rl_cli
from codemill.rl.config import RLConfig
from codemill.rl.launch import config_flags, rl_args, trainjob_manifest
from codemill.stage import config_from_args


def test_bad_input_is_one_line_and_exit_2(tmp_path, line_model, capsys):
    assert main(["rl", "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--no-tracking"]) == 2
    assert capsys.readouterr().err.strip().endswith("model folder not found (expected a Hugging Face model directory)")
    assert (
        main(["rl", "--model", line_model, "--output", str(tmp_path / "o"), "--num-generations", "1", "--no-tracking"])
        == 2
    )
    assert "num_generations must be >= 2" in capsys.readouterr().err
    assert (
        main(["rl", "--model", line_model, "--tasks", str(tmp_path), "--output", str(tmp_path / "o"), "--no-tracking"])
        == 2
    )
    assert "no tasks/*.parquet" in capsys.readouterr().err


def test_flags_reproduce_the_config():
    config = RLConfig(
        kinds=["output"],
        loss="cispo",
        beta=0.01,
        mask_truncated=False,
        problems="s3://b/p.jsonl",
        decontaminate=[],
        lr=3e-6,
    )
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    rl_cli.register(sub)
    args = parser.parse_args(["rl", *rl_args(config, "s3://b/sft/model", "s3://b/tasks", "s3://b/rl")])
    assert config_from_args(RLConfig, args) == config
    assert (args.model, args.tasks, args.output) == ("s3://b/sft/model", "s3://b/tasks", "s3://b/rl")
    assert "--no-mask-truncated" in config_flags(config)


def test_trainjob_is_trains_launcher_running_rl(monkeypatch):
    monkeypatch.setenv("POD_NAMESPACE", "kubeflow")
    job = trainjob_manifest(
        RLConfig(max_steps=50),
        "s3://b/sft/model",
        "s3://b/tasks",
        "s3://b/rl",
        "ghcr.io/codemill/codemill-cuda:0.1.0",
        num_nodes=2,
        gpus_per_node=8,
    )
    command = job["spec"]["trainer"]["command"]
    assert command[:4] == ["torchrun", "-m", "codemill.cli", "rl"]
    assert command[command.index("--max-steps") + 1] == "50" and "--tasks" in command
    assert job["metadata"]["name"].startswith("codemill-rl-") and job["metadata"]["labels"]["codemill.stage"] == "rl"
    assert job["spec"]["trainer"]["numNodes"] == 2 and job["metadata"]["namespace"] == "kubeflow"


def test_component_compiles_with_a_gpu(tmp_path):
    from kfp import compiler, dsl

    from components._common import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, gpu_task
    from components.rl import rl_model

    @dsl.pipeline(name="rl-only")
    def rl_only(
        model: str,
        tasks: str,
        output: str,
        options: dict,
        gpu_count: str = "1",
        gpu_node_selector: dict = DEFAULT_GPU_NODE_SELECTOR,
        gpu_tolerations: list = DEFAULT_GPU_TOLERATIONS,
    ):
        gpu_task(
            rl_model(
                model=model,
                tasks=tasks,
                output=output,
                options=options,
                seed=0,
                gpu_count=1,
                num_nodes=1,
                gpu_node_selector=gpu_node_selector,
                gpu_tolerations=gpu_tolerations,
                tracking_uri="",
                parent_run_id="",
            ),
            gpu_count,
            gpu_node_selector,
            gpu_tolerations,
        )

    path = str(tmp_path / "rl.yaml")
    compiler.Compiler().compile(rl_only, package_path=path)
    spec, _ = yaml.safe_load_all(open(path))
    container = spec["deploymentSpec"]["executors"]["exec-rl-model"]["container"]
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert "codemill-cuda" in container["image"]

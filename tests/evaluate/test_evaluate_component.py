"""The KFP components: they compile with the GPU settings, and run through kfp.local."""

import json
import os
import shutil

import pytest
import yaml
from kfp import compiler, dsl

from components._common import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, cpu_task, gpu_task
from components.evaluate import eval_generate, eval_score


@dsl.pipeline(name="evaluate-only")
def evaluate_only(
    train: str,
    pack: str,
    output: str,
    options: dict,
    seed: int = 0,
    gpu_count: int = 1,
    gpu_node_selector: dict = DEFAULT_GPU_NODE_SELECTOR,
    gpu_tolerations: list = DEFAULT_GPU_TOLERATIONS,
):
    generated = gpu_task(
        eval_generate(
            train=train, pack=pack, output=output, options=options, seed=seed, tracking_uri="none", parent_run_id=""
        ),
        gpu_count,
        gpu_node_selector,
        gpu_tolerations,
        cpu="4",
        memory="32Gi",
    )
    cpu_task(
        eval_score(output=generated.output, options=options, seed=seed, tracking_uri="none", parent_run_id=""),
        cpu="4",
        memory="8Gi",
    )


def test_components_compile_with_a_gpu_generation_step(tmp_path):
    path = str(tmp_path / "evaluate.yaml")
    compiler.Compiler().compile(evaluate_only, package_path=path)
    spec, platform = yaml.safe_load_all(open(path))
    executors = spec["deploymentSpec"]["executors"]
    generate = executors["exec-eval-generate"]["container"]
    score = executors["exec-eval-score"]["container"]
    assert generate["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert "accelerator" not in score["resources"]
    assert "codemill-cuda" in generate["image"] and "codemill-cpu" in score["image"]
    outputs = spec["components"]["comp-eval-score"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    kubernetes = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert "nodeSelector" in kubernetes["exec-eval-generate"] and "tolerations" in kubernetes["exec-eval-generate"]
    assert "nodeSelector" not in kubernetes.get("exec-eval-score", {})  # the sandboxed scoring needs no GPU node


@pytest.mark.slow
def test_components_run_locally(tiny_model_dir, pack_dir, tmp_path):
    from codemill.pipeline_cli import init_local

    init_local(str(tmp_path / "kfp"))  # as `codemill pipeline run --local` does
    output = str(tmp_path / "eval")
    # KFP hands dict parameters over as protobuf Structs: integers arrive as floats.
    options = {
        "limit": 1,
        "max_new_tokens": 8,
        "heldout_spans": 2,
        "ppl_sequences": 1,
        "threads": 1,
        "benchmarks": ["humaneval", "stdio", "heldout"],
    }
    train = tmp_path / "train"
    shutil.copytree(tiny_model_dir, train / "model")  # train's output layout: model/ inside
    evaluate_only(train=str(train), pack=pack_dir, output=output, options=options)
    stats = json.load(open(os.path.join(output, "stats.json")))
    assert stats["humaneval"]["greedy"]["tasks"] == 1 and stats["heldout"]["fim_spans"] == 2
    assert os.path.exists(os.path.join(output, "report.html"))

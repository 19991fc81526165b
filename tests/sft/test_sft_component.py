"""The KFP component compiles on the CUDA image with a GPU, and its step is in the step table."""

import yaml
from kfp import compiler, dsl

from codemill.steps import STEPS
from components._common import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, gpu_task
from components.sft import sft_model


@dsl.pipeline(name="sft-only")
def sft_only(
    model: str,
    data: str,
    output: str,
    options: dict,
    preset: str = "tiny",
    seed: int = 0,
    gpu_count: str = "1",
    gpu_node_selector: dict = DEFAULT_GPU_NODE_SELECTOR,
    gpu_tolerations: list = DEFAULT_GPU_TOLERATIONS,
):
    gpu_task(
        sft_model(
            model=model,
            data=data,
            output=output,
            preset=preset,
            options=options,
            seed=seed,
            tracking_uri="none",
            parent_run_id="",
        ),
        gpu_count,
        gpu_node_selector,
        gpu_tolerations,
        cpu="8",
        memory="64Gi",
    )


def test_component_compiles_with_a_gpu(tmp_path):
    path = str(tmp_path / "sft.yaml")
    compiler.Compiler().compile(sft_only, package_path=path)
    spec, platform = yaml.safe_load_all(open(path))
    container = spec["deploymentSpec"]["executors"]["exec-sft-model"]["container"]
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert "codemill-cuda" in container["image"]
    outputs = spec["components"]["comp-sft-model"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.Markdown"
    kubernetes = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-sft-model"]
    assert "nodeSelector" in kubernetes and "tolerations" in kubernetes


def test_the_step_reads_a_model_and_data():
    step = STEPS["sft"]
    assert step.inputs == ("model", "data") and step.config_class().__name__ == "SftConfig"

"""The committed IR YAML is what the pipeline function compiles to, and asks for GPUs only where meant."""

import os

import yaml

from codemill.pipeline_cli import DEFAULT_COMPILED, compile_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, DEFAULT_COMPILED)
GPU_EXECUTORS = {"exec-train-model", "exec-eval-generate"}  # serve runs on CPU locally; on a cluster the Deployment holds the GPU


def _compile(tmp_path) -> str:
    out = str(tmp_path / "codemill.yaml")
    compile_pipeline(out)
    return out


def test_committed_yaml_is_fresh(tmp_path, monkeypatch):
    monkeypatch.delenv("CODEMILL_REGISTRY", raising=False)
    monkeypatch.delenv("CODEMILL_TAG", raising=False)
    fresh = open(_compile(tmp_path)).read()
    assert fresh == open(COMMITTED).read(), (
        "pipelines/compiled/codemill.yaml is stale: run `make compile` and commit it")


def _docs(path):
    with open(path) as f:
        return list(yaml.safe_load_all(f))


def test_gpus_only_where_meant_with_pool_parameters():
    docs = _docs(COMMITTED)
    spec = docs[0]
    executors = spec["deploymentSpec"]["executors"]
    assert GPU_EXECUTORS <= set(executors)
    for name, ex in executors.items():
        resources = ex["container"].get("resources", {})
        accel = resources.get("accelerator")
        if name in GPU_EXECUTORS:
            assert accel and accel.get("resourceType") == "nvidia.com/gpu", name
        else:
            assert not accel, f"{name} asks for an accelerator"
        assert resources.get("resourceCpuRequest") and resources.get("resourceMemoryRequest"), name
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    for name in GPU_EXECUTORS & set(executors):
        k8s = platform[name]
        assert k8s["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"].endswith("gpu_node_selector")
        assert k8s["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith("gpu_tolerations")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"gpu_count", "gpu_node_selector", "gpu_tolerations"} <= set(params)

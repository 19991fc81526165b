"""The committed IR YAML of every pipeline is what its function compiles to, asks for GPUs only
where meant, and takes every resource from a string parameter."""

import json
import os
import re

import pytest
import yaml

from codemill.pipeline_cli import PIPELINES, compile_pipeline, compiled_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, compiled_path("codemill"))
# serve runs on CPU locally; on a cluster the Deployment holds the GPU. Executor names are
# per component, suffixed -2, -3, ... when a pipeline uses one component more than once.
GPU_COMPONENTS = ("exec-train-model", "exec-eval-generate", "exec-sft-on-kept", "exec-rl-model")
GPU_EXECUTORS = {"exec-train-model", "exec-eval-generate"}
EXPECTED_GPU = {
    "codemill": {"exec-train-model", "exec-eval-generate", "exec-sft-on-kept", "exec-rl-model"},
    "posttrain": {"exec-eval-generate", "exec-sft-on-kept", "exec-rl-model"},
    "r1": {"exec-eval-generate", "exec-sft-on-kept", "exec-rl-model"},
}


def _compile(tmp_path, pipeline: str = "codemill") -> str:
    out = str(tmp_path / f"{pipeline}.yaml")
    compile_pipeline(out, pipeline)
    return out


def _is_gpu(executor: str) -> bool:
    return re.sub(r"-\d+$", "", executor) in GPU_COMPONENTS


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_committed_yaml_is_fresh(tmp_path, monkeypatch, pipeline):
    monkeypatch.delenv("CODEMILL_REGISTRY", raising=False)
    monkeypatch.delenv("CODEMILL_TAG", raising=False)
    fresh = open(_compile(tmp_path, pipeline)).read()
    assert fresh == open(os.path.join(ROOT, compiled_path(pipeline))).read(), (
        f"pipelines/compiled/{pipeline}.yaml is stale: run `make compile` and commit it"
    )


def _docs(path):
    with open(path) as f:
        return list(yaml.safe_load_all(f))


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_gpus_only_where_meant_with_pool_parameters(pipeline):
    docs = _docs(os.path.join(ROOT, compiled_path(pipeline)))
    spec = docs[0]
    executors = spec["deploymentSpec"]["executors"]
    assert {re.sub(r"-\d+$", "", e) for e in executors if _is_gpu(e)} == EXPECTED_GPU[pipeline]
    for name, ex in executors.items():
        resources = ex["container"].get("resources", {})
        accel = resources.get("accelerator")
        if _is_gpu(name):
            assert accel and accel.get("resourceType") == "nvidia.com/gpu", name
        else:
            assert not accel, f"{name} asks for an accelerator"
        assert resources.get("resourceCpuRequest") and resources.get("resourceMemoryRequest"), name
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(docs) > 1 else {}
    for name in filter(_is_gpu, executors):
        k8s = platform[name]
        assert k8s["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"].endswith("gpu_node_selector")
        assert k8s["tolerations"][0]["tolerationJson"]["componentInputParameter"].endswith("gpu_tolerations")
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"gpu_count", "gpu_node_selector", "gpu_tolerations"} <= set(params)


# ---- what a KFP 2.17 backend needs from the compiled YAML

RESOURCE_FIELDS = ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit")
PLACEHOLDER = re.compile(r"^\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}$")


def _resource_values(executor: dict) -> dict:
    resources = executor["container"].get("resources", {})
    values = {f: resources[f] for f in RESOURCE_FIELDS if f in resources}
    if "accelerator" in resources:
        values["accelerator.resourceCount"] = resources["accelerator"].get("resourceCount")
    return values


def _sources(spec: dict, component: str, param: str) -> set:
    """Where ``param`` of ``component`` comes from: {("root", name, type)} or {("constant", value, None)}."""
    if component == "root":
        return {("root", param, spec["root"]["inputDefinitions"]["parameters"][param]["parameterType"])}
    dags = {"root": spec["root"], **{n: c for n, c in spec["components"].items() if "dag" in c}}
    found = set()
    for parent, comp in dags.items():
        for task in comp["dag"]["tasks"].values():
            if task["componentRef"]["name"] != component:
                continue
            source = task["inputs"].get("parameters", {}).get(param)
            if source is None:  # the group never receives it: the placeholder resolves to nothing
                found.add(("not passed down", f"{parent} -> {component}", None))
            elif "componentInputParameter" in source:
                found |= _sources(spec, parent, source["componentInputParameter"])
            elif "runtimeValue" in source:
                found.add(("constant", str(source["runtimeValue"]["constant"]), None))
            else:
                found.add(("task output", json.dumps(source, sort_keys=True), None))
    return found


def _resource_sources(spec: dict) -> dict:
    """(executor, field) -> the root parameters feeding it; asserts each is a STRING parameter."""
    by_executor = {c["executorLabel"]: n for n, c in spec["components"].items() if "executorLabel" in c}
    fed_by = {}
    for name, executor in spec["deploymentSpec"]["executors"].items():
        for field, value in _resource_values(executor).items():
            m = PLACEHOLDER.match(str(value))
            if not m:
                continue
            sources = _sources(spec, by_executor[name], m.group(1))  # the task's inputs feed the placeholder
            assert sources and all(kind == "root" and t == "STRING" for kind, _, t in sources), (name, field, sources)
            fed_by[(name, field)] = {src for _, src, _ in sources}
    return fed_by


def test_every_resource_field_comes_from_a_string_parameter(tmp_path):
    """The 2.17 driver resolves resource placeholders with GetStringValue(): an integer
    parameter yields "" and the pod gets no limit, no GPU (docs/deploy.md)."""
    fed_by = _resource_sources(_docs(_compile(tmp_path))[0])
    for executor in GPU_EXECUTORS:
        assert fed_by[(executor, "accelerator.resourceCount")] == {"gpu_count"}
    assert fed_by[("exec-train-model", "resourceCpuRequest")] == {"train_cpu"}
    assert fed_by[("exec-train-model", "resourceMemoryLimit")] == {"train_memory"}
    assert fed_by[("exec-eval-generate", "resourceMemoryRequest")] == {"eval_memory"}
    assert fed_by[("exec-eval-score", "resourceCpuLimit")] == {"score_cpu"}
    assert fed_by[("exec-sft-on-kept", "resourceMemoryRequest")] == {"train_memory"}
    assert fed_by[("exec-rl-model", "accelerator.resourceCount")] == {"gpu_count"}


@pytest.mark.parametrize("pipeline", ["posttrain", "r1"])
def test_the_post_training_pipelines_take_resources_from_string_parameters_too(tmp_path, pipeline):
    spec = _docs(_compile(tmp_path, pipeline))[0]
    fed_by = _resource_sources(spec)
    gpu_fields = {k: v for k, v in fed_by.items() if _is_gpu(k[0]) and k[1] == "accelerator.resourceCount"}
    assert gpu_fields and all(v == {"gpu_count"} for v in gpu_fields.values())
    assert fed_by[("exec-eval-score", "resourceCpuLimit")] == {"score_cpu"}
    assert all(fed_by[(e, "resourceCpuRequest")] == {"train_cpu"} for e, _ in gpu_fields if "eval" not in e)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["base_model"]["parameterType"] == "STRING" and params["base_model"]["defaultValue"]
    if pipeline == "r1":
        assert params["problems"]["defaultValue"] == "bundled"


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_an_exit_handler_closes_the_mlflow_parent_run_whatever_the_outcome(tmp_path, pipeline):
    spec = _docs(_compile(tmp_path, pipeline))[0]
    tasks = spec["root"]["dag"]["tasks"]
    closing = tasks["finish-run"]
    assert closing["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    handler = closing["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"]
    assert set(tasks) == {"finish-run", handler}  # every other task runs inside the handler
    assert "start-run" in spec["components"][tasks[handler]["componentRef"]["name"]]["dag"]["tasks"]
    assert closing["cachingOptions"] == {}  # caching off: it ends an MLflow run


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_side_effect_tasks_never_come_from_the_cache(tmp_path, pipeline):
    """Rollouts move aliases and patch Deployments; r1's comparison registers versions."""
    spec = _docs(_compile(tmp_path, pipeline))[0]
    dags = [spec["root"]] + [c for c in spec["components"].values() if "dag" in c]
    tasks = {n: t for d in dags for n, t in d["dag"]["tasks"].items()}
    side_effects = [n for n in tasks if n.startswith(("serve-rollout", "r1-compare"))]
    assert side_effects
    for name in side_effects:
        assert tasks[name].get("cachingOptions") == {}, name

"""The committed IR YAML is what the pipeline function compiles to, and asks for GPUs only where meant."""

import json
import os
import re

import yaml

from codemill.pipeline_cli import DEFAULT_COMPILED, compile_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, DEFAULT_COMPILED)
# serve runs on CPU locally; on a cluster the Deployment holds the GPU
GPU_EXECUTORS = {"exec-train-model", "exec-eval-generate"}


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
    assert set(executors) >= GPU_EXECUTORS
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


def test_every_resource_field_comes_from_a_string_parameter(tmp_path):
    """The 2.17 driver resolves resource placeholders with GetStringValue(): an integer
    parameter yields "" and the pod gets no limit, no GPU (docs/deploy.md)."""
    spec = _docs(_compile(tmp_path))[0]
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
    for executor in GPU_EXECUTORS:
        assert fed_by[(executor, "accelerator.resourceCount")] == {"gpu_count"}
    assert fed_by[("exec-train-model", "resourceCpuRequest")] == {"train_cpu"}
    assert fed_by[("exec-train-model", "resourceMemoryLimit")] == {"train_memory"}
    assert fed_by[("exec-eval-generate", "resourceMemoryRequest")] == {"eval_memory"}
    assert fed_by[("exec-eval-score", "resourceCpuLimit")] == {"score_cpu"}


def test_an_exit_handler_closes_the_mlflow_parent_run_whatever_the_outcome(tmp_path):
    spec = _docs(_compile(tmp_path))[0]
    tasks = spec["root"]["dag"]["tasks"]
    closing = tasks["finish-run"]
    assert closing["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    handler = closing["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"]
    assert set(tasks) == {"finish-run", handler}  # every other task runs inside the handler
    assert "start-run" in spec["components"][tasks[handler]["componentRef"]["name"]]["dag"]["tasks"]
    assert closing["cachingOptions"] == {}  # caching off: it ends an MLflow run

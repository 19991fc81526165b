"""Render codemill's Kubernetes manifests offline and validate them against schemas.

- The Helm chart is rendered with Helm's own Go SDK (``helm_python``), the way
  ``helm template`` would; ``api_versions`` plays the part of what a cluster advertises,
  so the ServiceMonitor's CRD check can be exercised without a cluster.
- ``k8s/`` overlays are rendered with ``kubectl kustomize`` (no cluster contacted).
- Core kinds are validated against the Kubernetes 1.30 OpenAPI schemas that
  ``kubernetes-validate`` ships (strict: unknown fields fail). Custom resources
  (ServiceMonitor, Application, TrainingRuntime) have no schema there: they are checked
  against the small structural schemas below, and pod or job templates embedded in them
  are wrapped in a Pod/Job and validated against the core schemas.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(REPO, "charts", "codemill")
K8S = os.path.join(REPO, "k8s")
KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "codemill", "codemill"
PROMETHEUS_CRD = ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"]

# ---------------------------------------------------------------------------- rendering


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def values_file(name: str | None) -> dict:
    if name is None:
        return {}
    with open(os.path.join(CHART, name), encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def render_chart(values: dict | None = None, api_versions: list[str] | None = None) -> list[dict]:
    """The chart's objects for ``values`` (layered over values.yaml by Helm itself)."""
    import helm_python as helm
    from helm_python import _native

    # Chart.render() has no api_versions argument; the C ABI underneath accepts it in the
    # same options object, which is what `helm template --api-versions` sets.
    opts = {"name": RELEASE, "namespace": NAMESPACE, "is_install": True, "kube_version": f"v{KUBE_VERSION}"}
    if api_versions:
        opts["api_versions"] = api_versions
    with helm.Chart.load(CHART) as chart:
        rendered = json.loads(
            _native.call_string("helm_render", chart._raw(), json.dumps(values or {}), json.dumps(opts))
        )
    objects = []
    for path in sorted(rendered):
        if path.endswith((".yaml", ".yml")):
            objects += [o for o in yaml.safe_load_all(rendered[path]) if o]
    return objects


@functools.cache
def chart_objects(env: str | None) -> tuple[dict, ...]:
    """Objects for default values (env None) or values-<env>.yaml, with the Prometheus CRD present."""
    values = values_file(f"values-{env}.yaml" if env else None)
    return tuple(render_chart(values, api_versions=PROMETHEUS_CRD))


def kubectl() -> str | None:
    return shutil.which("kubectl")


@functools.cache
def kustomize(path: str) -> tuple[dict, ...]:
    """``kubectl kustomize k8s/<path>`` as objects."""
    out = subprocess.run(
        [kubectl(), "kustomize", os.path.join(K8S, path)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return tuple(o for o in yaml.safe_load_all(out) if o)


# ---------------------------------------------------------------------------- validation

_META = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}}
_SOURCE = {
    "type": "object",
    "required": ["repoURL", "targetRevision", "path"],
    "properties": {
        "repoURL": {"type": "string", "pattern": "^https://"},
        "targetRevision": {"type": "string", "minLength": 1},
        "path": {"type": "string", "minLength": 1},
    },
}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {"type": "object", "required": ["matchLabels"]},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "object", "required": ["port", "path"]},
                    },
                },
            },
        },
    },
    ("argoproj.io/v1alpha1", "Application"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["project", "destination", "syncPolicy"],
                "oneOf": [{"required": ["source"]}, {"required": ["sources"]}],
                "properties": {
                    "source": _SOURCE,
                    "sources": {"type": "array", "minItems": 1, "items": _SOURCE},
                    "destination": {"type": "object", "required": ["server"]},
                },
            },
        },
    },
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["mlPolicy", "template"],
                "properties": {
                    "mlPolicy": {"type": "object", "required": ["numNodes"]},
                    "template": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicatedJobs"],
                                "properties": {
                                    "replicatedJobs": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": {"type": "object", "required": ["name", "template"]},
                                    }
                                },
                            }
                        },
                    },
                },
            },
        },
    },
}


def embedded_templates(obj: dict) -> list[dict]:
    """Core objects embedded in a custom resource (a TrainingRuntime's JobSet jobs)."""
    if obj["kind"] != "TrainingRuntime":
        return []
    return [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job["name"]}, **job["template"]}
        for job in obj["spec"]["template"]["spec"]["replicatedJobs"]
    ]


def validate(obj: dict) -> str:
    """Validate one object; returns "core" or "crd" (a custom resource checked structurally)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_SCHEMAS:
        jsonschema.validate(obj, CRD_SCHEMAS[key])
        for inner in embedded_templates(obj):
            kubernetes_validate.validate(inner, KUBE_VERSION, strict=True)
        return "crd"
    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    return "core"


# ---------------------------------------------------------------------------- pod specs

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_templates(obj: dict) -> list[tuple[str, dict, dict]]:
    """(where, pod labels, pod spec) of every pod an object creates."""
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind == "Pod":
        return [(name, obj["metadata"].get("labels", {}), spec)]
    if kind in WORKLOADS:
        tpl = spec["template"]
        return [(name, tpl.get("metadata", {}).get("labels", {}), tpl["spec"])]
    if kind == "CronJob":
        tpl = spec["jobTemplate"]["spec"]["template"]
        return [(name, tpl.get("metadata", {}).get("labels", {}), tpl["spec"])]
    if kind == "TrainingRuntime":
        out = []
        for job in spec["template"]["spec"]["replicatedJobs"]:
            tpl = job["template"]["spec"]["template"]
            out.append((f"{name}/{job['name']}", tpl.get("metadata", {}).get("labels", {}), tpl["spec"]))
        return out
    return []


def containers(pod_spec: dict) -> list[dict]:
    return list(pod_spec.get("initContainers", [])) + list(pod_spec.get("containers", []))

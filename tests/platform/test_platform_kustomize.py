"""k8s/: every kustomization renders, validates for Kubernetes 1.30 and wires what the pipeline needs."""

from __future__ import annotations

import os
import re

import pytest
from k8s_manifests import REPO, kubectl, kustomize, validate

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl (for `kubectl kustomize`) is not installed")

OVERLAYS = ["", "dev", "argocd", "argocd/dev"]
CRD_KINDS = {"TrainingRuntime", "Application"}


def find(objects, kind, name, namespace=None):
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {kind}/{name} in {namespace}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_and_only_known_custom_kinds_skip_the_core_schemas(overlay):
    objects = kustomize(overlay)
    results = [(o["kind"], validate(o)) for o in objects]
    assert results, f"k8s/{overlay} rendered nothing"
    assert {kind for kind, how in results if how == "crd"} <= CRD_KINDS


def test_platform_holds_namespace_rbac_policies_quota_priority_and_runtime():
    objects = kustomize("")
    ns = find(objects, "Namespace", "codemill")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    find(objects, "ServiceAccount", "codemill-pipeline-runner", "kubeflow")
    find(objects, "NetworkPolicy", "default-deny", "codemill")
    find(objects, "LimitRange", "codemill-defaults", "codemill")
    assert find(objects, "ResourceQuota", "codemill-gpu", "codemill")["spec"]["hard"]["requests.nvidia.com/gpu"]
    training = find(objects, "PriorityClass", "codemill-training")
    serving = find(objects, "PriorityClass", "codemill-serving")
    assert serving["value"] > training["value"] and training["preemptionPolicy"] == "Never"
    runtime = find(objects, "TrainingRuntime", "codemill-torch-distributed", "codemill")
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "codemill-training"
    assert pod["serviceAccountName"] == "codemill-trainer"


def test_pipeline_runner_may_do_exactly_what_train_and_serve_need_in_codemill():
    objects = kustomize("")
    binding = find(objects, "RoleBinding", "codemill-pipeline", "codemill")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "codemill-pipeline-runner", "namespace": "kubeflow"}
    ]
    rules = find(objects, "Role", binding["roleRef"]["name"], "codemill")["rules"]

    def allowed(group, resource, verb, name=None):
        return any(
            group in r["apiGroups"]
            and resource in r["resources"]
            and verb in r["verbs"]
            and (name is None or name in r.get("resourceNames", [name]))
            for r in rules
        )

    assert allowed("trainer.kubeflow.org", "trainjobs", "create")
    assert allowed("apps", "deployments", "patch", "codemill-serve")
    assert not allowed("apps", "deployments", "patch", "codemill-mlflow")
    assert allowed("", "pods", "list") and allowed("", "pods", "get")
    assert not any("*" in r["verbs"] or "secrets" in r["resources"] for r in rules)


def test_pipeline_steps_reach_mlflow_and_the_inference_server_in_codemill():
    steps = find(kustomize(""), "NetworkPolicy", "codemill-steps", "kubeflow")["spec"]["egress"]

    def reaches(profile, port):
        return any(
            peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "codemill"}
            and peer.get("podSelector", {}).get("matchLabels") == {"codemill.io/network": profile}
            and {"protocol": "TCP", "port": port} in rule["ports"]
            for rule in steps
            for peer in rule["to"]
        )

    assert reaches("mlflow", 5000) and reaches("inference", 8000)
    assert not reaches("mlflow", 8000)


def test_dev_overlay_adds_postgres_and_points_the_pipeline_at_in_cluster_s3():
    objects = kustomize("dev")
    find(objects, "Deployment", "codemill-postgres", "codemill")
    env = find(objects, "ConfigMap", "codemill-pipeline-env", "kubeflow")["data"]
    # KFP >= 2.16 serves S3 from SeaweedFS; minio-service is gone.
    assert env["AWS_ENDPOINT_URL"] == "http://seaweedfs.kubeflow.svc.cluster.local:9000"
    assert env["MLFLOW_TRACKING_URI"] == "http://codemill-mlflow.codemill.svc.cluster.local:5000"
    assert env["CODEMILL_SERVE_URL"] == "http://codemill-serve.codemill.svc.cluster.local:8000"
    assert find(objects, "ResourceQuota", "codemill-gpu")["spec"]["hard"]["requests.nvidia.com/gpu"] == "2"


def _constraint(name):
    with open(os.path.join(REPO, "constraints.txt")) as f:
        return next(line.split("==")[1].strip() for line in f if line.lower().startswith(name + "=="))


@pytest.mark.parametrize("overlay", ["argocd", "argocd/dev"])
def test_argocd_applications_pin_kfp_to_the_locked_release_and_pick_values_per_environment(overlay):
    apps = {o["metadata"]["name"]: o for o in kustomize(overlay)}
    assert set(apps) == {"kubeflow-pipelines", "codemill-platform", "codemill"}
    kfp_sources = apps["kubeflow-pipelines"]["spec"]["sources"]
    assert {s["targetRevision"] for s in kfp_sources} == {_constraint("kfp-server-api")}
    assert [s["path"] for s in kfp_sources] == [
        "manifests/kustomize/cluster-scoped-resources",
        "manifests/kustomize/env/platform-agnostic",
    ]
    dev = overlay.endswith("dev")
    chart = apps["codemill"]["spec"]["source"]
    assert chart["path"] == "charts/codemill"
    assert chart["helm"]["valueFiles"] == ["values-dev.yaml" if dev else "values-prod.yaml"]
    platform_path = apps["codemill-platform"]["spec"]["source"]["path"]
    assert platform_path == ("k8s/dev" if dev else "k8s")
    # What the Applications point at exists in this repository.
    for path in (chart["path"], platform_path, os.path.join(chart["path"], chart["helm"]["valueFiles"][0])):
        assert os.path.exists(os.path.join(REPO, path)), path
    waves = [
        int(apps[n]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for n in ("kubeflow-pipelines", "codemill-platform", "codemill")
    ]
    assert waves == sorted(waves)


def test_codemill_image_tag_is_one_setting_across_pipeline_and_platform():
    from components import _common

    with open(os.path.join(REPO, "pyproject.toml")) as f:
        version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    with open(os.path.join(REPO, "charts", "codemill", "Chart.yaml")) as f:
        app_version = re.search(r'^appVersion: "([^"]+)"', f.read(), re.M).group(1)
    assert _common.TAG == version == app_version
    for overlay in ("", "dev"):
        runtime = find(kustomize(overlay), "TrainingRuntime", "codemill-torch-distributed")
        pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == _common.CUDA_IMAGE

"""Deployment policy over everything codemill renders: the chart (default, dev, prod) and k8s/.

Each rule is first shown to catch a bad example, then applied to the real objects.
"""

from __future__ import annotations

import copy

import pytest
from k8s_manifests import chart_objects, kubectl, kustomize, pod_templates
from k8s_policy import gpu_violations, resource_violations, restricted_violations, secret_violations, selects

GOOD_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
    "containers": [
        {
            "name": "main",
            "image": "x",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
            },
            "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
        }
    ],
}


def spoil(path: str, value):
    """GOOD_POD with one field replaced (path like "containers.0.securityContext.privileged")."""
    pod = copy.deepcopy(GOOD_POD)
    *parents, last = path.split(".")
    node = pod
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        node.pop(last)
    else:
        node[last] = value
    return pod


def all_objects():
    objects = [
        ("chart" if env is None else f"chart/{env}", o) for env in (None, "dev", "prod") for o in chart_objects(env)
    ]
    if kubectl():
        objects += [(f"k8s/{overlay}", o) for overlay in ("", "dev") for o in kustomize(overlay)]
    return objects


def all_pods():
    pods = [(f"{src}:{where}", labels, pod) for src, obj in all_objects() for where, labels, pod in pod_templates(obj)]
    assert len(pods) >= 9, "no pod templates found: the policy tests would check nothing"
    return pods


# ---------------------------------------------------------------------------- the rules catch bad pods


def test_good_example_passes_every_rule():
    for rule in (restricted_violations, resource_violations, gpu_violations):
        assert rule("good", GOOD_POD) == []


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("securityContext.runAsNonRoot", None, "runAsNonRoot"),
        ("securityContext.runAsUser", 0, "runAsUser 0"),
        ("securityContext.seccompProfile", {"type": "Unconfined"}, "seccompProfile"),
        ("containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "drop ALL"),
        ("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "adds capabilities"),
        ("containers.0.securityContext.privileged", True, "privileged"),
        ("containers.0.securityContext.readOnlyRootFilesystem", False, "writable"),
        ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort"),
        ("hostNetwork", True, "hostNetwork"),
        ("volumes", [{"name": "root", "hostPath": {"path": "/"}}], "hostPath"),
    ],
)
def test_restricted_rule_catches(path, value, expected):
    problems = restricted_violations("bad", spoil(path, value))
    assert len(problems) == 1 and expected in problems[0], problems


def test_resource_and_gpu_rules_catch():
    assert "no limits" in resource_violations("bad", spoil("containers.0.resources.limits", {}))[0]
    assert "A100" in gpu_violations("bad", spoil("nodeSelector", {"nvidia.com/gpu.product": "Tesla-T4"}))[0]
    assert "taint" in gpu_violations("bad", spoil("tolerations", []))[0]
    cpu_only = spoil(
        "containers.0.resources", {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    )
    assert gpu_violations("cpu-only", spoil("nodeSelector", None)) != []
    assert gpu_violations("cpu-only", cpu_only) == []


def test_secret_rule_catches_inlined_credentials():
    assert secret_violations({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})
    pod = spoil("containers.0.env", [{"name": "AWS_SECRET_ACCESS_KEY", "value": "abc"}])
    deployment = {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": pod}}}
    assert "AWS_SECRET_ACCESS_KEY" in secret_violations(deployment)[0]
    uri = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"db": "postgresql://u:hunter2@db/x"}}
    assert "inlined password" in secret_violations(uri)[0]
    assert (
        secret_violations(
            {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"db": "postgresql://mlflow@db:5432/x"}}
        )
        == []
    )


def test_label_selector_matching():
    sandbox = {"codemill.io/network": "sandbox"}
    assert selects({}, sandbox)
    assert selects({"matchExpressions": [{"key": "codemill.io/network", "operator": "Exists"}]}, sandbox)
    assert not selects(
        {"matchExpressions": [{"key": "codemill.io/network", "operator": "NotIn", "values": ["sandbox"]}]}, sandbox
    )
    assert selects(
        {"matchExpressions": [{"key": "codemill.io/network", "operator": "NotIn", "values": ["sandbox"]}]}, {}
    )
    assert not selects({"matchLabels": {"codemill.io/network": "mlflow"}}, sandbox)


# ---------------------------------------------------------------------------- the real objects


def test_every_pod_meets_the_restricted_profile():
    problems = [p for where, _, pod in all_pods() for p in restricted_violations(where, pod)]
    assert problems == []


def test_every_container_has_requests_and_limits():
    problems = [p for where, _, pod in all_pods() for p in resource_violations(where, pod)]
    assert problems == []


def test_gpu_workloads_select_the_a100_pool_and_tolerate_its_taint():
    pods = all_pods()
    gpu_pods = [
        where
        for where, _, pod in pods
        if any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in pod["containers"])
    ]
    # prod inference (chart default and prod) and the training runtime (k8s and k8s/dev).
    assert len(gpu_pods) >= (3 if kubectl() else 2), gpu_pods
    problems = [p for where, _, pod in pods for p in gpu_violations(where, pod)]
    assert problems == []


def test_no_secret_values_are_inlined():
    problems = [p for _, obj in all_objects() for p in secret_violations(obj)]
    assert problems == []


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed")
def test_network_policies_cover_every_profile_and_nothing_reaches_the_sandbox():
    policies = [o for overlay in ("", "dev") for o in kustomize(overlay) if o["kind"] == "NetworkPolicy"]
    codemill = [p for p in policies if p["metadata"]["namespace"] == "codemill"]
    deny = next(p for p in codemill if p["metadata"]["name"] == "default-deny")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]

    allows = [p for p in policies if p["spec"].get("ingress") or p["spec"].get("egress")]
    sandbox = {"codemill.io/network": "sandbox"}
    assert [p["metadata"]["name"] for p in allows if selects(p["spec"]["podSelector"], sandbox)] == []
    assert any(
        selects(p["spec"]["podSelector"], sandbox) and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for p in codemill
        if p["spec"]["podSelector"]
    )
    # In the KFP namespace a codemill pod with any other profile is denied everything too.
    steps_deny = next(p for p in policies if p["metadata"]["name"] == "codemill-steps-default-deny")
    assert selects(steps_deny["spec"]["podSelector"], sandbox)
    assert set(steps_deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}

    # Every profile a codemill pod carries has an allow written for it (not only the DNS
    # allow that every profile but sandbox shares).
    specific = [p for p in allows if not selects(p["spec"]["podSelector"], {"codemill.io/network": "unknown"})]
    profiles = {labels["codemill.io/network"] for _, labels, _ in all_pods() if "codemill.io/network" in labels}
    assert profiles >= {"mlflow", "inference", "pipeline-upload", "training"}
    # sandbox: the chart's sandbox service pods, whose only allow is the chart's own policy (below).
    # pipeline-step: KFP's pods, labelled by the components.
    for profile in (profiles - {"sandbox"}) | {"pipeline-step"}:
        assert any(selects(p["spec"]["podSelector"], {"codemill.io/network": profile}) for p in specific), profile


def test_the_sandbox_service_is_reached_only_by_codemill_pods_and_reaches_nothing():
    for env in (None, "dev", "prod"):
        objects = chart_objects(env)
        policy = next(
            o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "codemill-sandbox"
        )
        pod_labels = next(
            labels
            for obj in objects
            for _, labels, _ in pod_templates(obj)
            if labels.get("codemill.io/network") == "sandbox"
        )
        assert selects(policy["spec"]["podSelector"], pod_labels)
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"} and policy["spec"]["egress"] == []
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
        for peer in rule["from"]:  # every peer is a selected set of codemill pods, never an IP block or a namespace
            assert set(peer) <= {"podSelector", "namespaceSelector"} and "podSelector" in peer
            assert (
                peer["podSelector"] in ({"matchLabels": {"app.kubernetes.io/part-of": "codemill"}},)
                or peer["podSelector"]["matchExpressions"][0]["key"] == "codemill.io/network"
            )
        assert not selects(rule["from"][0]["podSelector"], {"app": "anything-else"})

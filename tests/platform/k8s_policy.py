"""Policy rules over rendered Kubernetes objects; each returns a list of violations.

The rules are the project's deployment policy, written as plain functions so each can
be tested on a bad example as well as on the real manifests:

- ``restricted_violations``: the restricted Pod Security Standard (Kubernetes 1.30)
  plus a read-only root filesystem for every container;
- ``resource_violations``: every container states cpu/memory requests and limits;
- ``gpu_violations``: a pod that asks for ``nvidia.com/gpu`` selects the A100 pool and
  tolerates the GPU taint;
- ``secret_violations``: no credential is written into an object (no Secret objects,
  no literal values for credential-like env vars, no passwords in URLs);
- ``selects``: label-selector matching, for NetworkPolicy checks.
"""

from __future__ import annotations

import re

from k8s_manifests import containers, pod_templates

# Volume types the restricted profile allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
GPU = "nvidia.com/gpu"
# Node labels that name the GPU model on GPU feature discovery, GKE and EKS/Karpenter.
GPU_PRODUCT_LABELS = {
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
}
CREDENTIAL_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|ACCESS_KEY)", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def restricted_violations(where: str, pod: dict) -> list[str]:
    bad = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            bad.append(f"{where}: {flag}")
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            bad.append(f"{where}: volume {vol['name']} of type {sorted(kinds - ALLOWED_VOLUMES)}")
    psc = pod.get("securityContext", {})
    if psc.get("sysctls"):
        bad.append(f"{where}: sysctls")
    for c in containers(pod):
        csc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{name}: runAsNonRoot is not true")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile {seccomp!r}")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation is not false")
        if csc.get("privileged"):
            bad.append(f"{name}: privileged")
        caps = csc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: adds capabilities {caps['add']}")
        if any("hostPort" in p for p in c.get("ports", [])):
            bad.append(f"{name}: hostPort")
        if csc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{name}: root filesystem is writable")
    return bad


def resource_violations(where: str, pod: dict) -> list[str]:
    bad = []
    for c in containers(pod):
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(res.get(part, {}))
            if missing:
                bad.append(f"{where}/{c['name']}: no {part} for {sorted(missing)}")
    return bad


def gpu_count(pod: dict) -> int:
    total = 0
    for c in containers(pod):
        res = c.get("resources", {})
        total += max(int(res.get("limits", {}).get(GPU, 0)), int(res.get("requests", {}).get(GPU, 0)))
    return total


def gpu_violations(where: str, pod: dict) -> list[str]:
    if gpu_count(pod) == 0:
        return []
    bad = []
    selector = pod.get("nodeSelector", {})
    if not any(k in GPU_PRODUCT_LABELS and "a100" in str(v).lower() for k, v in selector.items()):
        bad.append(f"{where}: asks for GPUs but does not select the A100 pool (nodeSelector {selector})")
    tolerated = any(
        t.get("key") == GPU
        and t.get("effect", "NoSchedule") == "NoSchedule"
        and t.get("operator", "Equal") in ("Exists", "Equal")
        for t in pod.get("tolerations", [])
    )
    if not tolerated:
        bad.append(f"{where}: asks for GPUs but does not tolerate the {GPU}:NoSchedule taint")
    return bad


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def secret_violations(obj: dict) -> list[str]:
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    bad = []
    if obj.get("kind") == "Secret":
        bad.append(f"{where}: a Secret with inlined data (reference an existing Secret instead)")
    for text in _strings(obj):
        if URL_WITH_PASSWORD.search(text):
            bad.append(f"{where}: URL with an inlined password: {text[:80]!r}")
    for pod_where, _, pod in pod_templates(obj):
        for c in containers(pod):
            for env in c.get("env", []):
                if CREDENTIAL_ENV.search(env["name"]) and "value" in env:
                    bad.append(f"{pod_where}/{c['name']}: env {env['name']} is a literal, not a secretKeyRef")
    return bad


def selects(selector: dict, labels: dict) -> bool:
    """Whether a LabelSelector (matchLabels + matchExpressions) matches ``labels``."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True

"""Rolling the inference Deployment (installed by the Helm chart) to a new model version.

The Deployment's server container reads the model reference from an environment
variable (``CODEMILL_MODEL_URI=models:/codemill/7``). Rolling out is a strategic-merge
patch of that variable (containers and env entries merge by name) plus a pod-template
annotation naming the version, which changes the pod template and so starts a rolling
update. Kubernetes does the rest; this module waits until the rollout is complete the
way ``kubectl rollout status`` decides it:

* ``status.observedGeneration >= metadata.generation`` (the controller saw the patch),
* ``updatedReplicas == replicas`` (every pod runs the new template),
* ``availableReplicas == replicas`` and ``status.replicas == replicas`` (new pods are
  ready, old ones are gone),

and fails early when the Deployment reports ``ProgressDeadlineExceeded``. The pipeline
step's service account needs ``get``/``patch`` on ``deployments`` in the serving
namespace (the Helm chart's Role).

The API object is passed in (``AppsV1Api`` on a cluster), so tests drive this module with
a stand-in that plays the controller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MODEL_ANNOTATION = "codemill.io/model-uri"


@dataclass
class KubeTarget:
    namespace: str
    deployment: str
    container: str
    model_env: str


def apps_api():
    """An AppsV1Api: in-cluster credentials in a pod, else the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.AppsV1Api()


def _container(deployment, name: str):
    for c in deployment.spec.template.spec.containers:
        if c.name == name:
            return c
    names = [c.name for c in deployment.spec.template.spec.containers]
    raise LookupError(f"deployment {deployment.metadata.name} has no container {name!r} (has {names})")


def current_model(api, target: KubeTarget) -> str | None:
    """The model reference the Deployment serves now (None when the variable is unset)."""
    dep = api.read_namespaced_deployment(target.deployment, target.namespace)
    for env in _container(dep, target.container).env or []:
        if env.name == target.model_env:
            return env.value
    return None


def set_model(api, target: KubeTarget, model_uri: str) -> int:
    """Point the Deployment at ``model_uri``; returns the generation to wait for."""
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {MODEL_ANNOTATION: model_uri}},
                "spec": {
                    "containers": [{"name": target.container, "env": [{"name": target.model_env, "value": model_uri}]}]
                },
            }
        }
    }
    dep = api.patch_namespaced_deployment(target.deployment, target.namespace, patch)
    return dep.metadata.generation


def rollout_state(dep, generation: int) -> tuple[bool, str]:
    """(done, description) for one read of the Deployment's status."""
    status, want = dep.status, dep.spec.replicas if dep.spec.replicas is not None else 1
    for cond in status.conditions or []:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            raise RuntimeError(f"deployment {dep.metadata.name} exceeded its progress deadline: {cond.message}")
    observed = status.observed_generation or 0
    updated, available, total = status.updated_replicas or 0, status.available_replicas or 0, status.replicas or 0
    text = f"generation {observed}/{generation}, updated {updated}/{want}, available {available}/{want}, total {total}"
    return observed >= generation and updated == want and available == want and total == want, text


def wait_rollout(
    api,
    target: KubeTarget,
    generation: int,
    timeout_s: float,
    poll_s: float = 5.0,
    sleep=time.sleep,
    clock=time.monotonic,
) -> dict:
    """Block until the rollout of ``generation`` completed; raises TimeoutError/RuntimeError otherwise."""
    start = clock()
    while True:
        dep = api.read_namespaced_deployment_status(target.deployment, target.namespace)
        done, text = rollout_state(dep, generation)
        if done:
            return {"generation": generation, "status": text, "seconds": round(clock() - start, 2)}
        if clock() - start > timeout_s:
            raise TimeoutError(
                f"deployment {target.namespace}/{target.deployment} not rolled out after {timeout_s:.0f}s: {text}"
            )
        sleep(poll_s)

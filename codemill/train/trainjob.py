"""Several nodes: run the train stage as a Kubeflow Trainer ``TrainJob`` and wait for it.

The KFP step builds a ``trainer.kubeflow.org/v1alpha1`` TrainJob that points at a
cluster runtime -- ``torch-distributed`` (``torchrun`` on every node; the runtime sets
``PET_NNODES``/``PET_NODE_RANK``/``PET_MASTER_ADDR``, which torchrun reads) or
``deepspeed-distributed`` (an MPI launcher; ``deepspeed.init_distributed`` discovers the
ranks) -- with the same ``codemill train`` flags, ``numNodes`` nodes of ``gpus_per_node``
GPUs each, and the A100 pool's node selector and tolerations as pod overrides. The step
then polls the TrainJob until its ``Complete`` or ``Failed`` condition is true.

A retried step finds its TrainJob by name (derived from the output URL): a running one
is waited on, a failed one is deleted and created again, and the new pods resume from
the latest checkpoint in the output. RBAC the step's service account needs (namespaced
Role): ``trainjobs.trainer.kubeflow.org`` with get, list, watch, create, delete; see
docs/train.md.
"""

from __future__ import annotations

import hashlib
import os
import time

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
RUNTIMES = ("torch-distributed", "deepspeed-distributed")
# Non-secret settings the pods need to reach the same storage and tracking as this step.
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "MLFLOW_TRACKING_URI",
    "CODEMILL_EXPERIMENT",
)
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def job_name(output: str) -> str:
    """One TrainJob per output URL, so a retried step finds the job it started."""
    return "codemill-train-" + hashlib.sha256(output.encode()).hexdigest()[:12]


def current_namespace(default: str = "default") -> str:
    if os.path.exists(SA_NAMESPACE):
        with open(SA_NAMESPACE, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get("POD_NAMESPACE", default)


def _env(credentials_secret: str) -> list[dict]:
    env = [{"name": k, "value": os.environ[k]} for k in FORWARDED_ENV if os.environ.get(k)]
    if credentials_secret:
        env += [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": credentials_secret, "key": k, "optional": True}}}
            for k in SECRET_KEYS
        ]
    return env


def manifest(
    name: str,
    namespace: str,
    image: str,
    train_args: list[str],
    num_nodes: int,
    gpus_per_node: int,
    runtime: str = "torch-distributed",
    node_selector: dict | None = None,
    tolerations: list | None = None,
    cpu: str = "8",
    memory: str = "64Gi",
    credentials_secret: str = "",
    service_account: str = "",
) -> dict:
    """The TrainJob object: ``train_args`` are the ``codemill train`` flags every rank runs with."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown TrainJob runtime {runtime!r}; expected one of {RUNTIMES}")
    if num_nodes < 1 or gpus_per_node < 1:
        raise ValueError(f"need num_nodes >= 1 and gpus_per_node >= 1, got {num_nodes} and {gpus_per_node}")
    entry = ["-m", "codemill.cli", "train", *train_args]
    if runtime == "torch-distributed":
        command = ["torchrun", *entry]
        targets = ["node"]
    else:
        command = ["mpirun", "--hostfile", "/etc/mpi/hostfile", "python", *entry]
        targets = ["launcher", "node"]
    resources = {"nvidia.com/gpu": str(gpus_per_node), "cpu": cpu, "memory": memory}
    override: dict = {"targetJobs": [{"name": t} for t in targets]}
    if node_selector:
        override["nodeSelector"] = dict(node_selector)
    if tolerations:
        override["tolerations"] = list(tolerations)
    if service_account:
        override["serviceAccountName"] = service_account
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "codemill", "codemill.stage": "train"},
        },
        "spec": {
            "runtimeRef": {"name": runtime, "apiGroup": GROUP, "kind": "ClusterTrainingRuntime"},
            "trainer": {
                "image": image,
                "command": command,
                "numNodes": num_nodes,
                "numProcPerNode": gpus_per_node,
                "resourcesPerNode": {"requests": dict(resources), "limits": dict(resources)},
                "env": _env(credentials_secret),
            },
            "podSpecOverrides": [override],
        },
    }


def condition(obj: dict) -> tuple[str, str] | None:
    """("Complete"|"Failed", message) once the TrainJob has finished, else None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"], cond.get("message", "")
    return None


def default_api():
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def run(
    job: dict, api=None, poll_seconds: float = 30.0, timeout_seconds: float | None = None, log=print, sleep=time.sleep
) -> str:
    """Create the TrainJob (or adopt the one a previous try made) and wait; returns its message."""
    from kubernetes.client.exceptions import ApiException

    api = api or default_api()
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    args = (GROUP, VERSION, namespace, PLURAL)
    try:
        api.create_namespaced_custom_object(*args, job)
        log(f"[train] created TrainJob {namespace}/{name}")
    except ApiException as e:
        if e.status != 409:
            raise RuntimeError(f"cannot create TrainJob {namespace}/{name}: {e.status} {e.reason}") from e
        existing = api.get_namespaced_custom_object(*args, name)
        done = condition(existing)
        if done and done[0] == "Failed":
            log(f"[train] TrainJob {name} failed before ({done[1]}); recreating it to resume from the checkpoint")
            api.delete_namespaced_custom_object(*args, name)
            _wait_gone(api, args, name, poll_seconds, sleep)
            api.create_namespaced_custom_object(*args, job)
        else:
            log(f"[train] adopting the existing TrainJob {namespace}/{name}")
    waited = 0.0
    while True:
        done = condition(api.get_namespaced_custom_object(*args, name))
        if done:
            if done[0] == "Failed":
                raise RuntimeError(f"TrainJob {namespace}/{name} failed: {done[1]}")
            return done[1]
        if timeout_seconds is not None and waited >= timeout_seconds:
            raise TimeoutError(f"TrainJob {namespace}/{name} did not finish within {timeout_seconds:.0f}s")
        sleep(poll_seconds)
        waited += poll_seconds


def _wait_gone(api, args, name, poll_seconds, sleep, tries: int = 60) -> None:
    from kubernetes.client.exceptions import ApiException

    for _ in range(tries):
        try:
            api.get_namespaced_custom_object(*args, name)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        sleep(poll_seconds)
    raise TimeoutError(f"TrainJob {name} was not deleted")

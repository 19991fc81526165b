"""What every KFP component shares: the images it runs in and how tasks ask for resources.

Images are one setting: ``CODEMILL_REGISTRY`` and ``CODEMILL_TAG`` (read when the
pipeline is compiled) pick the registry and tag of both images; the committed YAML uses
the defaults below. Both images carry codemill and the pinned kfp, so components are
declared with ``install_kfp_package=False``: a step never pip-installs at start (pods may
have no route to a package index, and a read-only root filesystem).
"""

from __future__ import annotations

import os

from kfp import dsl, kubernetes
from kfp.dsl import pipeline_channel

REGISTRY = os.environ.get("CODEMILL_REGISTRY", "ghcr.io/codemill")
TAG = os.environ.get("CODEMILL_TAG", "0.1.0")
CPU_IMAGE = f"{REGISTRY}/codemill-cpu:{TAG}"
CUDA_IMAGE = f"{REGISTRY}/codemill-cuda:{TAG}"

# NetworkPolicy profile label (k8s/base/networkpolicies-{codemill,pipelines}.yaml) and the
# platform settings every task reads from the codemill-pipeline-env ConfigMap.
NETWORK_LABEL = "codemill.io/network"
PIPELINE_ENV_KEYS = (
    "MLFLOW_TRACKING_URI",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "CODEMILL_NAMESPACE",
    "CODEMILL_TRAINING_RUNTIME",
    "CODEMILL_SERVE_DEPLOYMENT",
    "CODEMILL_SERVE_URL",
)

# Every node of the A100 pool carries this taint in GKE/EKS/GPU-operator setups.
DEFAULT_GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
DEFAULT_GPU_NODE_SELECTOR = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


def cpu_task(
    task: dsl.PipelineTask,
    cpu: str = "1",
    memory: str = "2Gi",
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
) -> dsl.PipelineTask:
    """Requests (and limits) for a CPU task; limits default to the requests.

    Each value is a literal or a STRING pipeline parameter: the KFP 2.17 driver resolves
    resource placeholders only from string parameters (docs/deploy.md).
    """
    cpu_limit, memory_limit = cpu_limit or cpu, memory_limit or memory
    task.set_cpu_request(cpu).set_memory_request(memory)
    task.set_cpu_limit(cpu_limit).set_memory_limit(memory_limit)
    _register_resource_parameters(task, cpu, memory, cpu_limit, memory_limit)
    return on_platform(task)


def _register_resource_parameters(task: dsl.PipelineTask, *values) -> None:
    """kfp 2.16's ``set_cpu_request`` & co. do not record a pipeline parameter as an input
    of the task, so inside a group (the exit handler, a sub-pipeline) the compiler never
    passes it down and the placeholder resolves to nothing. Record it, as
    ``set_container_image`` and kfp-kubernetes do."""
    channels = [v for v in values if isinstance(v, pipeline_channel.PipelineChannel)]
    if channels:
        task.register_pipeline_channels(channels)


def on_platform(task: dsl.PipelineTask, network: str = "pipeline-step") -> dsl.PipelineTask:
    """The task's NetworkPolicy profile, platform settings and S3/MLflow credentials (k8s/base).

    All optional: on a cluster without codemill's platform manifests (or with IRSA /
    workload identity instead of keys) the pods still start.
    """
    kubernetes.add_pod_label(task, NETWORK_LABEL, network)
    kubernetes.use_config_map_as_env(task, "codemill-pipeline-env", {k: k for k in PIPELINE_ENV_KEYS}, optional=True)
    kubernetes.use_secret_as_env(
        task,
        "codemill-s3",
        {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"},
        optional=True,
    )
    # the sandbox service's key, for steps given a sandbox_url in their options (docs/deploy.md)
    kubernetes.use_secret_as_env(task, "codemill-sandbox", {"api-key": "CODEMILL_SANDBOX_API_KEY"}, optional=True)
    kubernetes.use_secret_as_env(
        task,
        "codemill-mlflow-client",
        {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"},
        optional=True,
    )
    return task


def gpu_task(
    task: dsl.PipelineTask, gpu_count, node_selector_json, tolerations_json, cpu: str = "8", memory: str = "64Gi"
) -> dsl.PipelineTask:
    """Ask for ``gpu_count`` NVIDIA GPUs on the A100 pool.

    ``gpu_count`` (a STRING parameter, as ``cpu`` and ``memory`` are when they are
    parameters), ``node_selector_json`` and ``tolerations_json`` are pipeline parameters,
    so one compiled pipeline fits GKE
    (``cloud.google.com/gke-accelerator: nvidia-tesla-a100``), GPU feature discovery
    (``nvidia.com/gpu.product``) and EKS node groups. kfp.local ignores all of it.
    """
    cpu_task(task, cpu=cpu, memory=memory)  # also applies on_platform
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(gpu_count)
    _register_resource_parameters(task, gpu_count)
    kubernetes.add_node_selector_json(task, node_selector_json)
    kubernetes.add_toleration_json(task, tolerations_json)
    return task

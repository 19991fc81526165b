"""The multi-node TrainJob: its manifest, and create/adopt/wait against a stand-in API (no cluster)."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from codemill.train import TrainConfig, trainjob
from codemill.train.launch import train_args

SELECTOR = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def _job(runtime="torch-distributed", **kw):
    args = train_args(
        TrainConfig(preset="deepseek-coder-1.3b", max_steps=100),
        "s3://b/pack",
        "s3://b/train",
        "http://mlflow:5000",
        "parent123",
    )
    return trainjob.manifest(
        "codemill-train-x",
        "kubeflow",
        "ghcr.io/codemill/codemill-cuda:0.1.0",
        args,
        num_nodes=4,
        gpus_per_node=8,
        runtime=runtime,
        node_selector=SELECTOR,
        tolerations=TOLERATIONS,
        **kw,
    )


def test_torch_manifest_runs_torchrun_on_every_node_with_the_gpu_settings(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    job = _job(credentials_secret="codemill-s3")
    assert job["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and job["kind"] == "TrainJob"
    spec = job["spec"]
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
    }
    trainer = spec["trainer"]
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 8
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    cmd = trainer["command"]
    assert cmd[:4] == ["torchrun", "-m", "codemill.cli", "train"]
    assert cmd[cmd.index("--preset") + 1] == "deepseek-coder-1.3b" and cmd[cmd.index("--max-steps") + 1] == "100"
    assert cmd[cmd.index("--parent-run-id") + 1] == "parent123"
    (override,) = spec["podSpecOverrides"]
    assert override["targetJobs"] == [{"name": "node"}]
    assert override["nodeSelector"] == SELECTOR and override["tolerations"] == TOLERATIONS
    env = {e["name"]: e for e in trainer["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "codemill-s3"
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]  # secrets stay references


def test_deepspeed_manifest_uses_mpi_and_overrides_launcher_and_nodes():
    job = _job(runtime="deepspeed-distributed")
    assert job["spec"]["trainer"]["command"][:4] == ["mpirun", "--hostfile", "/etc/mpi/hostfile", "python"]
    assert [t["name"] for t in job["spec"]["podSpecOverrides"][0]["targetJobs"]] == ["launcher", "node"]
    with pytest.raises(ValueError, match="unknown TrainJob runtime"):
        _job(runtime="jax")


def test_job_name_is_stable_per_output_and_a_valid_dns_label():
    name = trainjob.job_name("s3://b/runs/1/train")
    assert name == trainjob.job_name("s3://b/runs/1/train") != trainjob.job_name("s3://b/runs/2/train")
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name.islower()


class FakeTrainJobs:
    """The CustomObjectsApi calls trainjob.run makes, over an in-memory store.

    Each poll of a TrainJob created here takes the next of ``states`` (None: still running).
    """

    def __init__(self, states: list[str | None], existing: dict | None = None):
        self.states, self.objects, self.calls = list(states), {}, []
        if existing:
            self.objects[existing["metadata"]["name"]] = existing

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.calls.append("create")
        assert (group, version, plural) == ("trainer.kubeflow.org", "v1alpha1", "trainjobs")
        if body["metadata"]["name"] in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.objects[body["metadata"]["name"]] = {**body, "status": {}, "fresh": True}

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append("get")
        if name not in self.objects:
            raise ApiException(status=404, reason="NotFound")
        obj = self.objects[name]
        if obj.get("fresh") and self.states:
            state = self.states.pop(0)
            if state:
                obj["status"] = {"conditions": [{"type": state, "status": "True", "message": f"job {state}"}]}
        return obj

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.calls.append("delete")
        del self.objects[name]


def test_run_creates_then_waits_until_complete():
    api = FakeTrainJobs([None, None, "Complete"])
    assert trainjob.run(_job(), api=api, poll_seconds=0, log=lambda *_: None, sleep=lambda _: None) == "job Complete"
    assert api.calls == ["create", "get", "get", "get"]


def test_run_raises_when_the_trainjob_fails():
    api = FakeTrainJobs([None, "Failed"])
    with pytest.raises(RuntimeError, match="failed: job Failed"):
        trainjob.run(_job(), api=api, poll_seconds=0, log=lambda *_: None, sleep=lambda _: None)


def test_a_retried_step_recreates_a_failed_trainjob():
    old = {**_job(), "status": {"conditions": [{"type": "Failed", "status": "True", "message": "preempted"}]}}
    api = FakeTrainJobs([None, "Complete"], existing=old)
    trainjob.run(_job(), api=api, poll_seconds=0, log=lambda *_: None, sleep=lambda _: None)
    assert api.calls == ["create", "get", "delete", "get", "create", "get", "get"]


def test_wait_gives_up_after_the_timeout():
    api = FakeTrainJobs([None] * 10)
    with pytest.raises(TimeoutError):
        trainjob.run(_job(), api=api, poll_seconds=5, timeout_seconds=10, log=lambda *_: None, sleep=lambda _: None)

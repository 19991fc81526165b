"""Kubernetes rollout against a stand-in AppsV1Api that plays the Deployment controller.

The stand-in applies the strategic-merge patch the way the API server does for this
shape (containers and env entries merge by name) and advances the rollout one step per
status read. The smoke requests go over real HTTP to the session's test server, as they
would go to the inference Service.
"""

import json

import pytest
from kubernetes.client import (
    V1Container,
    V1Deployment,
    V1DeploymentCondition,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1EnvVar,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
)

from codemill.serve import kube
from codemill.serve.rollout import RolloutConfig, rollout
from codemill.stage import InputError
from codemill.tracking import NoOpTracker
from tests.serve.serve_helpers import API_KEY

TARGET = kube.KubeTarget("codemill", "codemill-serve", "server", "CODEMILL_MODEL_URI")


class FakeApps:
    def __init__(self, replicas: int = 2, model: str = "models:/codemill/1", stuck: bool = False):
        containers = [
            V1Container(name="server", env=[V1EnvVar(name="CODEMILL_MODEL_URI", value=model)]),
            V1Container(name="metrics-sidecar"),
        ]
        self.dep = V1Deployment(
            metadata=V1ObjectMeta(name="codemill-serve", namespace="codemill", generation=1),
            spec=V1DeploymentSpec(
                replicas=replicas,
                selector=V1LabelSelector(match_labels={"app": "codemill"}),
                template=V1PodTemplateSpec(
                    metadata=V1ObjectMeta(annotations={}), spec=V1PodSpec(containers=containers)
                ),
            ),
            status=V1DeploymentStatus(
                observed_generation=1, replicas=replicas, updated_replicas=replicas, available_replicas=replicas
            ),
        )
        self.stuck = stuck
        self.patches: list[dict] = []
        self.status_reads = 0

    def read_namespaced_deployment(self, name, namespace):
        assert (name, namespace) == ("codemill-serve", "codemill")
        return self.dep

    def patch_namespaced_deployment(self, name, namespace, body):
        assert (name, namespace) == ("codemill-serve", "codemill")
        self.patches.append(json.loads(json.dumps(body)))
        template = body["spec"]["template"]
        self.dep.spec.template.metadata.annotations.update(template["metadata"]["annotations"])
        for patch_container in template["spec"]["containers"]:
            container = next(c for c in self.dep.spec.template.spec.containers if c.name == patch_container["name"])
            for env in patch_container["env"]:
                current = {e.name: e for e in container.env or []}
                if env["name"] in current:
                    current[env["name"]].value = env["value"]
                else:
                    container.env = (container.env or []) + [V1EnvVar(**env)]
        self.dep.metadata.generation += 1
        self.dep.status.updated_replicas = 0
        self.dep.status.available_replicas = self.dep.spec.replicas - 1  # maxUnavailable 1
        self.dep.status.replicas = self.dep.spec.replicas + 1  # maxSurge 1
        return self.dep

    def read_namespaced_deployment_status(self, name, namespace):
        self.status_reads += 1
        status, want = self.dep.status, self.dep.spec.replicas
        if self.stuck:
            status.conditions = [
                V1DeploymentCondition(
                    type="Progressing",
                    status="False",
                    reason="ProgressDeadlineExceeded",
                    message="ReplicaSet has timed out progressing",
                )
            ]
            return self.dep
        status.observed_generation = self.dep.metadata.generation
        if status.updated_replicas < want:
            status.updated_replicas += 1
        elif status.available_replicas < want:
            status.available_replicas += 1
        else:
            status.replicas = want
        return self.dep


def test_set_model_patches_only_the_server_container():
    api = FakeApps()
    assert kube.current_model(api, TARGET) == "models:/codemill/1"
    generation = kube.set_model(api, TARGET, "models:/codemill/2")
    assert generation == 2
    assert kube.current_model(api, TARGET) == "models:/codemill/2"
    assert api.dep.spec.template.metadata.annotations[kube.MODEL_ANNOTATION] == "models:/codemill/2"
    assert [c["name"] for c in api.patches[0]["spec"]["template"]["spec"]["containers"]] == ["server"]
    assert api.dep.spec.template.spec.containers[1].env is None


def test_wait_rollout_waits_for_every_replica():
    api = FakeApps(replicas=3)
    generation = kube.set_model(api, TARGET, "models:/codemill/2")
    naps = []
    result = kube.wait_rollout(api, TARGET, generation, timeout_s=60, poll_s=2, sleep=naps.append)
    assert api.status_reads == 5  # 3 updated, 1 more available, old pod gone
    assert naps == [2] * 4
    assert result["status"].startswith("generation 2/2, updated 3/3, available 3/3, total 3")


def test_wait_rollout_times_out():
    api = FakeApps()
    generation = kube.set_model(api, TARGET, "models:/codemill/2")
    ticks = iter(range(0, 1000, 10))
    with pytest.raises(TimeoutError, match="not rolled out after 15s"):
        kube.wait_rollout(api, TARGET, generation + 1, timeout_s=15, sleep=lambda s: None, clock=lambda: next(ticks))


def test_progress_deadline_fails_fast():
    api = FakeApps(stuck=True)
    with pytest.raises(RuntimeError, match="ProgressDeadlineExceeded|progress deadline"):
        kube.wait_rollout(api, TARGET, kube.set_model(api, TARGET, "x"), timeout_s=60, sleep=lambda s: None)
    assert api.status_reads == 1


def _inputs(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "train").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"heldout": {"perplexity": 300.0}}))
    (tmp_path / "train" / "stats.json").write_text(json.dumps({"val_loss_start": 6.1, "val_loss_end": 5.7}))
    return str(tmp_path / "eval"), str(tmp_path / "train"), str(tmp_path / "out")


def _config(server_url: str) -> RolloutConfig:
    return RolloutConfig(
        target="kubernetes", service_url=server_url, rollout_timeout_s=60, rollout_poll_s=0.01, smoke_max_tokens=4
    )


def test_kubernetes_rollout_then_smoke_through_the_service(server, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEMILL_API_KEY", API_KEY)
    api = FakeApps()
    stats = rollout(_config(server.url), tiny_model_dir, *_inputs(tmp_path), NoOpTracker(), kube_api=api)
    assert stats["rolled_out"], stats["decision"]
    assert kube.current_model(api, TARGET) == tiny_model_dir  # tracking off: served from its directory
    smoke = stats["smoke"]
    assert smoke["previous_model"] == "models:/codemill/1" and "rolled_back_to" not in smoke
    assert [r["name"] for r in smoke["requests"]] == ["completion", "fim", "stream"]
    assert all(r["status"] == 200 and r["latency_s"] > 0 for r in smoke["requests"])
    assert stats["registry"]["skipped"].startswith("tracking is off")
    assert stats["serve_command"] == f"codemill serve --model {tiny_model_dir}"


def test_failed_kubernetes_rollout_rolls_back(server, tiny_model_dir, tmp_path):
    api = FakeApps(stuck=True)
    stats = rollout(_config(server.url), tiny_model_dir, *_inputs(tmp_path), NoOpTracker(), kube_api=api)
    assert not stats["rolled_out"]
    assert stats["smoke"]["rolled_back_to"] == "models:/codemill/1"
    assert kube.current_model(api, TARGET) == "models:/codemill/1"
    assert [p["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] for p in api.patches] == [
        tiny_model_dir,
        "models:/codemill/1",
    ]
    assert "progress deadline" in stats["decision"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Rolled the Deployment back to `models:/codemill/1`" in report


def test_cluster_settings_come_from_the_pipeline_configmap(monkeypatch):
    monkeypatch.setenv("CODEMILL_NAMESPACE", "ml-serving")
    monkeypatch.setenv("CODEMILL_SERVE_DEPLOYMENT", "coder")
    monkeypatch.setenv("CODEMILL_SERVE_URL", "http://coder.ml-serving:8000")
    config = RolloutConfig()
    assert (config.namespace, config.deployment, config.service_url) == (
        "ml-serving",
        "coder",
        "http://coder.ml-serving:8000",
    )
    monkeypatch.delenv("CODEMILL_SERVE_URL")
    assert RolloutConfig().service_url == "http://codemill-serve.codemill.svc.cluster.local:8000"


class MissingDeployment(FakeApps):
    def read_namespaced_deployment(self, name, namespace):
        from kubernetes.client.exceptions import ApiException

        raise ApiException(status=404, reason="Not Found")


def test_missing_deployment_is_an_input_error(server, tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="deployment codemill/codemill-serve: cannot read it: Not Found"):
        rollout(_config(server.url), tiny_model_dir, *_inputs(tmp_path), NoOpTracker(), kube_api=MissingDeployment())

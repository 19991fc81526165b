"""The teacher served for one step: locally a real `codemill serve` that answers chat, on a
cluster the teacher Deployment's weight-fetching init container rolled to the model and back."""

import json

import httpx
from kubernetes.client import (
    V1Container,
    V1Deployment,
    V1DeploymentSpec,
    V1DeploymentStatus,
    V1EnvVar,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
)

from codemill.serve import local


def test_a_model_without_a_chat_template_is_served_with_one_and_stopped(tiny_model_dir, tmp_path):
    log = str(tmp_path / "teacher.log")
    with local.local_teacher(tiny_model_dir, log, ready_timeout_s=120) as served:
        body = {"messages": [{"role": "user", "content": "Write add(a, b)."}], "max_tokens": 4, "temperature": 0}
        reply = httpx.post(f"{served['url']}/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        assert served["chat_template_added"] and served["target"] == "local"
    assert not json.load(open(f"{tiny_model_dir}/tokenizer_config.json")).get("chat_template")  # original untouched
    try:
        httpx.get(f"{served['url']}/health", timeout=2)
        raise AssertionError("the teacher is still serving after the block")
    except httpx.TransportError:
        pass


class FakeApps:
    """One Deployment whose init container fetches the weights named by CODEMILL_MODEL_URI."""

    def __init__(self, model: str = "s3://codemill/teachers/teacher"):
        init = V1Container(name="fetch-model", env=[V1EnvVar(name="CODEMILL_MODEL_URI", value=model)])
        self.dep = V1Deployment(
            metadata=V1ObjectMeta(name="codemill-teacher", namespace="codemill", generation=1),
            spec=V1DeploymentSpec(
                replicas=1,
                selector=V1LabelSelector(match_labels={"app": "t"}),
                template=V1PodTemplateSpec(
                    metadata=V1ObjectMeta(annotations={}),
                    spec=V1PodSpec(containers=[V1Container(name="vllm")], init_containers=[init]),
                ),
            ),
            status=V1DeploymentStatus(observed_generation=1, replicas=1, updated_replicas=1, available_replicas=1),
        )
        self.patches = []

    def read_namespaced_deployment(self, name, namespace):
        return self.dep

    def patch_namespaced_deployment(self, name, namespace, body):
        self.patches.append(body)
        value = body["spec"]["template"]["spec"]["initContainers"][0]["env"][0]["value"]
        self.dep.spec.template.spec.init_containers[0].env[0].value = value
        self.dep.metadata.generation += 1
        return self.dep

    def read_namespaced_deployment_status(self, name, namespace):
        self.dep.status.observed_generation = self.dep.metadata.generation  # the controller caught up
        return self.dep


def test_the_teacher_deployment_is_rolled_to_the_model_and_back():
    api = FakeApps()
    target = local.TeacherDeployment("codemill", "codemill-teacher", service_url="http://teacher:8000", poll_s=0)
    with local.kube_teacher("s3://codemill/runs/r/r1_zero/model", target, api=api) as served:
        assert local._init_model(api, target) == "s3://codemill/runs/r/r1_zero/model"
        assert served["url"] == "http://teacher:8000" and served["rollout"]["generation"] == 2
        assert served["previous_model"] == "s3://codemill/teachers/teacher"
    assert local._init_model(api, target) == "s3://codemill/teachers/teacher"
    assert [p["spec"]["template"]["spec"]["initContainers"][0]["name"] for p in api.patches] == ["fetch-model"] * 2

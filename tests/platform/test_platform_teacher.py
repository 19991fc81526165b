"""The chart's optional teacher (synth's vLLM server): off by default; on, a valid GPU
Deployment and Service that load the weights from S3 or from a volume."""

from __future__ import annotations

import helm_python as helm
import pytest
from k8s_manifests import CHART, chart_objects, deep_merge, render_chart, validate, values_file


def _teacher(values: dict, env: str = "prod") -> list[dict]:
    objects = render_chart(deep_merge(values_file(f"values-{env}.yaml"), {"teacher": values}))
    return [o for o in objects if o["metadata"]["name"] == "codemill-teacher"]


def test_teacher_is_off_by_default():
    for env in (None, "dev", "prod"):
        assert not [o for o in chart_objects(env) if o["metadata"]["name"] == "codemill-teacher"]


def test_teacher_from_s3_is_a_valid_gpu_deployment_with_a_service():
    objects = _teacher(
        {
            "enabled": True,
            "model": "s3://models/qwen-coder",
            "apiKeySecret": {"name": "teacher-key"},
            "gpu": {"count": 2},
            "extraArgs": ["--reasoning-parser=deepseek_r1"],
        }
    )
    assert sorted(o["kind"] for o in objects) == ["Deployment", "Service"]
    assert all(validate(o) == "core" for o in objects)
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    fetch, server = pod["initContainers"][0], pod["containers"][0]
    assert fetch["args"] == ["$(CODEMILL_MODEL_URI)", "/cache/model"] and "codemill-cpu" in fetch["image"]
    assert server["image"].startswith("vllm/vllm-openai:") and server["command"] == ["vllm", "serve"]
    assert server["args"][0] == "/cache/model" and "--tensor-parallel-size=2" in server["args"]
    assert "--served-model-name=teacher" in server["args"] and "--reasoning-parser=deepseek_r1" in server["args"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"]["nvidia.com/gpu.product"] and pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    key = next(e for e in server["env"] if e["name"] == "VLLM_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "teacher-key", "key": "api-key"}
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 8000


def test_teacher_init_container_reads_the_model_from_codemill_model_uri():
    """The r1 pipeline's served teacher rolls the Deployment by patching this variable
    (codemill.serve.local.TeacherDeployment), so the args must read it, not the value."""
    from codemill.serve.local import TeacherDeployment

    objects = _teacher({"enabled": True, "model": "s3://models/r1-zero"})
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    target = TeacherDeployment(namespace="codemill", deployment="codemill-teacher")
    fetch = next(c for c in pod["initContainers"] if c["name"] == target.container)
    assert {"name": target.model_env, "value": "s3://models/r1-zero"} in fetch["env"]
    assert fetch["args"][0] == f"$({target.model_env})"
    assert all("s3://models/r1-zero" not in part for part in fetch["command"] + fetch["args"])


def test_teacher_from_a_volume_mounts_it_read_only_and_fetches_nothing():
    objects = _teacher({"enabled": True, "model": "teachers/qwen", "volumeClaim": "teacher-weights"})
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in pod and pod["containers"][0]["args"][0] == "/models/teachers/qwen"
    claim = next(v for v in pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    assert claim == {"claimName": "teacher-weights", "readOnly": True}


def test_teacher_needs_s3_or_a_volume_and_valid_values():
    with pytest.raises(helm.HelmRenderError, match="s3:// prefix"):
        _teacher({"enabled": True, "model": "teachers/qwen"})
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema({"teacher": {"gpu": {"count": "all"}}})

"""The Helm chart: lint, render (default, dev, prod), schema-validate, and behaviour of its switches."""

from __future__ import annotations

import json
import os

import helm_python as helm
import pytest
import yaml
from k8s_manifests import CHART, PROMETHEUS_CRD, chart_objects, deep_merge, render_chart, validate, values_file

ENVS = [None, "dev", "prod"]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind, name):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(objects, deployment, name):
    pod = one(objects, "Deployment", deployment)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


@pytest.mark.parametrize("env", ENVS)
def test_chart_lints_clean_with_each_values_file(env):
    report = helm.lint(CHART, values_file(f"values-{env}.yaml" if env else None), strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], problems


@pytest.mark.parametrize("env", ENVS)
def test_every_rendered_object_is_valid_for_kubernetes_1_30(env):
    kinds = [validate(o) for o in chart_objects(env)]
    # Only the ServiceMonitor is a custom resource; everything else met the core schemas.
    assert kinds.count("crd") == 1 and kinds.count("core") >= 9


@pytest.mark.parametrize("env", ENVS)
def test_chart_renders_every_component(env):
    objects = chart_objects(env)
    for kind, name in [
        ("Deployment", "codemill-mlflow"),
        ("Service", "codemill-mlflow"),
        ("Deployment", "codemill-serve"),
        ("Service", "codemill-serve"),
        ("Job", "codemill-pipeline-upload"),
        ("ServiceMonitor", "codemill-serve"),
        ("Deployment", "codemill-sandbox"),
        ("Service", "codemill-sandbox"),
        ("NetworkPolicy", "codemill-sandbox"),
        ("PodDisruptionBudget", "codemill-sandbox"),
        ("ConfigMap", "codemill-sandbox-seccomp"),
    ]:
        one(objects, kind, name)


def test_rendering_is_deterministic():
    values = values_file("values-prod.yaml")
    assert render_chart(values, PROMETHEUS_CRD) == render_chart(values, PROMETHEUS_CRD)


def test_values_files_meet_the_schema_and_bad_values_do_not():
    with helm.Chart.load(CHART) as chart:
        for env in ("dev", "prod"):
            chart.validate_schema(values_file(f"values-{env}.yaml"))
        for bad in (
            {"inference": {"gpu": {"count": "two"}}},  # wrong type
            {"inference": {"imageFlavor": "rocm"}},  # not an allowed value
            {"mlflow": {"postgres": {"password": "hunter2"}}},  # unknown key: no inlined secrets
            {"podSecurity": {"runAsUser": 0}},
        ):  # root
            with pytest.raises(helm.HelmValuesError):
                chart.validate_schema(bad)


def _schema_paths(schema, prefix=""):
    """Every property path the schema declares."""
    out = set()
    for key, sub in schema.get("properties", {}).items():
        out.add(prefix + key)
        out |= _schema_paths(sub, prefix + key + ".")
    return out


def _value_paths(values, prefix=""):
    out = set()
    for key, value in values.items():
        out.add(prefix + key)
        # Free-form maps (labels, annotations, node selectors) are typed as maps of strings.
        if isinstance(value, dict) and key not in ("annotations", "podAnnotations", "labels", "nodeSelector"):
            out |= _value_paths(value, prefix + key + ".")
    return out


def test_schema_covers_every_value_and_documents_it():
    with open(os.path.join(CHART, "values.schema.json")) as f:
        schema = json.load(f)
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    declared = _schema_paths(schema)
    assert _value_paths(values) <= declared, sorted(_value_paths(values) - declared)
    # ...and declares nothing values.yaml lacks (a stale schema entry).
    assert declared <= _value_paths(values), sorted(declared - _value_paths(values))

    def undocumented(node, path="values"):
        missing = [] if "description" in node or path == "values" else [path]
        for key, sub in node.get("properties", {}).items():
            missing += undocumented(sub, f"{path}.{key}")
        return missing

    assert undocumented(schema) == []


def test_dev_runs_on_cpu_and_prod_on_a100s():
    dev = container(chart_objects("dev"), "codemill-serve", "server")
    assert dev["image"] == "ghcr.io/codemill/codemill-cpu:0.1.0"
    assert "nvidia.com/gpu" not in dev["resources"]["limits"]
    prod_objects = chart_objects("prod")
    prod_pod = one(prod_objects, "Deployment", "codemill-serve")["spec"]["template"]["spec"]
    prod = prod_pod["containers"][0]
    assert prod["image"] == "ghcr.io/codemill/codemill-cuda:0.1.0"
    assert prod["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert prod_pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert prod_pod["priorityClassName"] == "codemill-serving"
    # With the HPA on, the Deployment leaves replicas to it.
    assert "replicas" not in one(prod_objects, "Deployment", "codemill-serve")["spec"]
    hpa = one(prod_objects, "HorizontalPodAutoscaler", "codemill-serve")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "codemill_num_requests_waiting"


def test_inference_probes_readiness_on_ready_and_sizes_startup_for_model_load():
    server = container(chart_objects("prod"), "codemill-serve", "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    startup = server["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert server["command"] == ["codemill", "serve"]
    # The model comes from the env var the serve step patches, so no --model flag may override it.
    assert {"name": "CODEMILL_MODEL_URI", "value": "models:/codemill@champion"} in server["env"]
    assert not any(a.startswith("--model") for a in server["args"])
    assert {"--host=0.0.0.0", "--port=8000", "--api-key-env=CODEMILL_API_KEY", "--backend=vllm"} <= set(server["args"])


def test_service_monitor_needs_the_crd_or_force():
    def monitors(values=None, api=None):
        return by_kind(render_chart(values or {}, api_versions=api), "ServiceMonitor")

    assert monitors() == []
    assert len(monitors(api=PROMETHEUS_CRD)) == 1
    assert len(monitors({"inference": {"serviceMonitor": {"force": True}}})) == 1
    assert monitors({"inference": {"serviceMonitor": {"enabled": False}}}, api=PROMETHEUS_CRD) == []
    secured = monitors({"inference": {"apiKeySecret": {"name": "api"}}}, api=PROMETHEUS_CRD)[0]
    assert secured["spec"]["endpoints"][0]["authorization"]["credentials"] == {"name": "api", "key": "api-key"}


def test_mlflow_serves_s3_artifacts_behind_basic_auth_with_postgres_password_from_a_secret():
    objects = chart_objects("prod")
    mlflow = container(objects, "codemill-mlflow", "mlflow")
    args = mlflow["args"]
    assert "--serve-artifacts" in args and "--app-name=basic-auth" in args
    assert "--artifacts-destination=s3://codemill/mlflow" in args
    assert "--backend-store-uri=postgresql://mlflow@postgres:5432/mlflow?sslmode=require" in args
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "codemill-postgres", "key": "password"}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "codemill-mlflow-auth"
    hosts = next(a for a in args if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "codemill-mlflow.codemill.svc.cluster.local:5000" in hosts
    ini = one(objects, "ConfigMap", "codemill-mlflow-auth-config")["data"]["basic_auth.ini"]
    assert "database_uri = postgresql://mlflow@postgres:5432/mlflow" in ini


def test_auth_off_drops_the_auth_app_and_its_config():
    objects = render_chart(deep_merge(values_file("values-dev.yaml"), {"mlflow": {"auth": {"enabled": False}}}))
    assert [c for c in by_kind(objects, "ConfigMap") if "mlflow" in c["metadata"]["name"]] == []
    mlflow = container(objects, "codemill-mlflow", "mlflow")
    assert not any(a.startswith("--app-name") for a in mlflow["args"])
    inference = container(objects, "codemill-serve", "server")
    assert "MLFLOW_TRACKING_PASSWORD" not in {e["name"] for e in inference["env"]}


def test_pipeline_upload_job_is_a_release_hook_uploading_a_named_version():
    job = one(chart_objects(None), "Job", "codemill-pipeline-upload")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    upload = job["spec"]["template"]["spec"]["containers"][0]
    assert upload["command"] == ["codemill", "pipeline", "submit"]
    assert "--no-run" in upload["args"] and "--version=0.1.0-r1" in upload["args"]
    pinned = render_chart({"pipelineUpload": {"version": "abc1234"}})
    assert (
        "--version=abc1234"
        in one(pinned, "Job", "codemill-pipeline-upload")["spec"]["template"]["spec"]["containers"][0]["args"]
    )


def test_optional_objects_follow_their_switches():
    plain = render_chart({})
    assert by_kind(plain, "Ingress") == [] and by_kind(plain, "HorizontalPodAutoscaler") == []
    with_ingress = render_chart(
        {"inference": {"ingress": {"enabled": True, "host": "code.internal", "tlsSecret": "code-tls"}}}
    )
    ingress = one(with_ingress, "Ingress", "codemill-serve")
    assert ingress["spec"]["tls"][0] == {"hosts": ["code.internal"], "secretName": "code-tls"}
    with pytest.raises(helm.HelmRenderError, match="host is required"):
        render_chart({"inference": {"ingress": {"enabled": True}}})
    assert (
        by_kind(
            render_chart(
                {
                    "inference": {"enabled": False},
                    "mlflow": {"enabled": False},
                    "pipelineUpload": {"enabled": False},
                    "sandbox": {"enabled": False},
                }
            ),
            "Deployment",
        )
        == []
    )


def test_dev_values_point_s3_at_kfps_seaweedfs():
    """KFP >= 2.16 has no minio-service: its object store is the Service seaweedfs, port 9000."""
    objects = chart_objects("dev")
    for deployment, name in (("codemill-mlflow", "mlflow"), ("codemill-serve", "server")):
        env = {e["name"]: e.get("value") for e in container(objects, deployment, name)["env"]}
        assert env["AWS_ENDPOINT_URL"] == "http://seaweedfs.kubeflow.svc.cluster.local:9000", deployment


def test_sandbox_service_runs_isolated_with_the_shipped_seccomp_profile():
    objects = chart_objects(None)
    pod = one(objects, "Deployment", "codemill-sandbox")["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["command"] == ["codemill", "sandbox", "serve"] and "--require-isolation" in server["args"]
    assert "--api-key-env=CODEMILL_SANDBOX_API_KEY" in server["args"]
    key = next(e for e in server["env"] if e["name"] == "CODEMILL_SANDBOX_API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "codemill-sandbox", "key": "api-key"}
    profile = {"type": "Localhost", "localhostProfile": "codemill/sandbox-seccomp.json"}
    assert pod["securityContext"]["seccompProfile"] == profile == server["securityContext"]["seccompProfile"]
    assert server["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    shipped = json.loads(one(objects, "ConfigMap", "codemill-sandbox-seccomp")["data"]["sandbox-seccomp.json"])
    with open(os.path.join(CHART, "files", "sandbox-seccomp.json")) as f:
        assert shipped == json.load(f)
    denied = set(shipped["syscalls"][0]["names"])
    assert {"ptrace", "mount", "bpf", "setns", "io_uring_setup"} <= denied and "unshare" not in denied
    scaled = render_chart({"sandbox": {"autoscaling": {"enabled": True}, "appArmorProfile": "Unconfined"}})
    assert one(scaled, "HorizontalPodAutoscaler", "codemill-sandbox")["spec"]["maxReplicas"] == 8
    assert "replicas" not in one(scaled, "Deployment", "codemill-sandbox")["spec"]
    assert container(scaled, "codemill-sandbox", "sandbox")["securityContext"]["appArmorProfile"] == {
        "type": "Unconfined"
    }
    with pytest.raises(helm.HelmValuesError):  # the service never runs without a key
        render_chart({"sandbox": {"apiKeySecret": {"name": ""}}})

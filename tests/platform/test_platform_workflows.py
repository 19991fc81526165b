""".github/workflows: the CI runs what the project promises and points at files that exist."""

from __future__ import annotations

import glob
import os
import re
import shlex

import pytest
import yaml
from k8s_manifests import REPO

WORKFLOWS = sorted(glob.glob(os.path.join(REPO, ".github", "workflows", "*.yaml")))


def load(name):
    with open(os.path.join(REPO, ".github", "workflows", name)) as f:
        text = f.read()
    return text, yaml.safe_load(text)


def run_lines(workflow, job):
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def test_workflows_exist():
    assert {os.path.basename(p) for p in WORKFLOWS} >= {"ci.yaml", "kind.yaml", "images.yaml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_workflow_is_well_formed_and_pins_its_actions(path):
    with open(path) as f:
        text = f.read()
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers, "no triggers"
    for job, spec in workflow["jobs"].items():
        assert spec["runs-on"].startswith("ubuntu-"), job
        for step in spec["steps"]:
            assert ("uses" in step) != ("run" in step), f"{job}: a step must either use an action or run"
            if "uses" in step:
                assert re.search(r"@v\d+(\.\d+)*$", step["uses"]), f"{job}: {step['uses']} is not pinned to a release"
    # Every repository path a workflow names exists.
    for ref in re.findall(r"(?<![\w/.-])((?:images|charts|k8s|pipelines)/[\w./-]+\.(?:ya?ml|Dockerfile|txt))", text):
        assert os.path.exists(os.path.join(REPO, ref)), ref


def test_ci_lints_tests_compiles_and_checks_the_chart_on_every_push():
    _, ci = load("ci.yaml")
    triggers = ci.get("on", ci.get(True))
    assert "push" in triggers and "pull_request" in triggers
    assert {"lint", "test", "compile", "chart"} <= set(ci["jobs"])
    assert "make test" in run_lines(ci, "test")
    assert "make lint" in run_lines(ci, "lint")
    compile_job = run_lines(ci, "compile")
    assert "make compile" in compile_job and "git diff --exit-code -- pipelines/compiled/" in compile_job
    chart = run_lines(ci, "chart")
    for values in ("values-dev.yaml", "values-prod.yaml"):
        assert f"helm lint --strict charts/codemill -f charts/codemill/{values}" in chart


def test_kind_job_deploys_everything_and_asserts_a_successful_run():
    text, kind = load("kind.yaml")
    with open(os.path.join(REPO, "constraints.txt")) as f:
        kfp_server = re.search(r"^kfp-server-api==(\S+)$", f.read(), re.M).group(1)
    assert kind["env"]["KFP_VERSION"] == kfp_server
    steps = run_lines(kind, "e2e")
    for needle in (
        "env/platform-agnostic?ref=$KFP_VERSION",
        "fake-gpu-operator",
        "kind load docker-image",
        "kubectl apply --server-side -k k8s/dev",
        "-f charts/codemill/values-dev.yaml",
        "--param train_preset=tiny",
        'run.state == "SUCCEEDED"',
        "rollout status deployment/codemill-serve",
    ):
        assert needle in steps, needle
    assert any(s.get("uses", "").startswith("helm/kind-action@") for s in kind["jobs"]["e2e"]["steps"])


def _quantity(text: str) -> float:
    """A Kubernetes CPU or memory quantity in cores / bytes (the forms codemill uses)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    m = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti)?", text)
    assert m, f"not a Kubernetes quantity: {text!r}"
    return float(m.group(1)) * units.get(m.group(2) or "", 1)


def test_kind_run_asks_for_resources_a_4_vcpu_16_gb_runner_has():
    from codemill.pipeline_cli import parse_params
    from pipelines.codemill_pipeline import codemill_pipeline

    _, kind = load("kind.yaml")
    lines = run_lines(kind, "e2e").replace("\\\n", " ").splitlines()
    submit = next(line for line in lines if "pipeline submit" in line)
    words = shlex.split(submit.split("|")[0])
    params = parse_params([words[i + 1] for i, w in enumerate(words) if w == "--param"])  # typed as submit reads them
    defaults = {k: v.default for k, v in codemill_pipeline.component_spec.inputs.items()}
    for task in ("train", "eval", "score"):
        cpu, memory = params[f"{task}_cpu"], params[f"{task}_memory"]
        assert isinstance(cpu, str) and isinstance(memory, str)  # resource fields need string parameters
        assert _quantity(cpu) <= 2 and _quantity(memory) <= 4 * 2**30, (task, cpu, memory)
        assert _quantity(defaults[f"{task}_cpu"]) >= 8  # the production default stays

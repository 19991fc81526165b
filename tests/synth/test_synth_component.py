"""The KFP component compiles, and its body runs the step with KFP's float-typed options."""

import yaml
from kfp import compiler, dsl

from codemill import io
from codemill.steps import STEPS
from components._common import cpu_task
from components.synth import synth


@dsl.pipeline(name="synth-only")
def synth_only(input: str, output: str, teacher_url: str = "", options: dict = {"max_samples": 10}):  # noqa: B006
    cpu_task(
        synth(
            mode="oss-instruct",
            input=input,
            tasks="",
            problems="",
            output=output,
            teacher_url=teacher_url,
            teacher_model="teacher",
            seed=0,
            options=options,
            tracking_uri="none",
            parent_run_id="",
        ),
        cpu="2",
        memory="4Gi",
    )


def test_component_compiles(tmp_path):
    path = str(tmp_path / "synth.yaml")
    compiler.Compiler().compile(synth_only, package_path=path)
    spec = next(yaml.safe_load_all(open(path)))
    container = spec["deploymentSpec"]["executors"]["exec-synth"]["container"]
    assert "codemill-cpu" in container["image"] and container["resources"]["cpuLimit"] == 2
    outputs = spec["components"]["comp-synth"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"


class _Artifact:
    def __init__(self, path):
        self.path, self.logged = str(path), {}

    def log_metric(self, key, value):
        self.logged[key] = value


def test_component_body_without_a_teacher_records_the_skip(tmp_path, oss_corpus):
    out = str(tmp_path / "out")
    metrics, report = _Artifact(tmp_path / "metrics"), _Artifact(tmp_path / "report.md")
    result = synth.python_func(
        mode="oss-instruct",
        input=oss_corpus,
        tasks="",
        problems="",
        output=out,
        teacher_url="",
        teacher_model="t",
        seed=0,
        options={"max_samples": 10.0},
        tracking_uri="",
        parent_run_id="",
        metrics=metrics,
        report=report,
    )
    assert result == out and io.read_json(f"{out}/stats.json")["skipped"] is True
    assert metrics.logged["skipped"] == 1.0 and "Skipped" in open(report.path).read()


def test_the_step_is_in_the_table():
    step = STEPS["synth"]
    assert step.config_class().__name__ == "SynthConfig" and not step.sharded and step.marker is None

"""The pipelines' one ``sandbox_url`` parameter: it defaults to "" (every step runs its own
sandbox, as kfp.local does), reaches every step that runs corpus or model code (eval-score,
synth and r1's distill steps, rl, tasks-shard), and a step's own ``options["sandbox_url"]``
wins over it."""

import re

import pytest
import yaml

from codemill.pipeline_cli import PIPELINES, compile_pipeline
from codemill.verify.client import with_sandbox_url
from components.evaluate import eval_score
from components.rl import rl_model
from components.tasks import tasks_shard

URL = "http://codemill-sandbox.codemill.svc:8080"
CODE_STEPS = {"eval-score", "synth", "r1-synth", "rl-model", "tasks-shard", "tasks-shards"}
EXPECTED = {
    "codemill": {"eval-score": 2, "synth": 1, "rl-model": 1, "tasks-shard": 1, "tasks-shards": 1},
    "posttrain": {"eval-score": 1, "synth": 1, "rl-model": 1, "tasks-shard": 1, "tasks-shards": 1},
    "r1": {"eval-score": 5, "r1-synth": 2, "rl-model": 2, "tasks-shard": 1, "tasks-shards": 1},
}


def test_the_parameter_applies_unless_the_options_name_the_url():
    assert with_sandbox_url({"limit": 4}, URL) == {"limit": 4, "sandbox_url": URL}
    assert with_sandbox_url(None, URL) == {"sandbox_url": URL}
    assert with_sandbox_url({"sandbox_url": "http://other:8080"}, URL) == {"sandbox_url": "http://other:8080"}
    assert with_sandbox_url({"sandbox_url": ""}, URL) == {"sandbox_url": ""}  # one step kept in-process
    assert with_sandbox_url({"limit": 4}, "") == {"limit": 4}
    options = {"limit": 4}
    with_sandbox_url(options, URL)
    assert options == {"limit": 4}  # the pipeline's dict is not changed


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_every_code_running_step_gets_the_pipeline_parameter(tmp_path, pipeline):
    out = str(tmp_path / f"{pipeline}.yaml")
    compile_pipeline(out, pipeline)
    spec = next(yaml.safe_load_all(open(out)))
    assert spec["root"]["inputDefinitions"]["parameters"]["sandbox_url"] == {
        "defaultValue": "",
        "isOptional": True,
        "parameterType": "STRING",
    }
    found: dict[str, int] = {}
    for component in [spec["root"], *spec["components"].values()]:
        for task in component.get("dag", {}).get("tasks", {}).values():
            name = re.sub(r"^comp-|-\d+$", "", task["componentRef"]["name"])
            if name not in CODE_STEPS:
                continue
            found[name] = found.get(name, 0) + 1
            given = task["inputs"]["parameters"].get("sandbox_url")
            assert given in (
                {"componentInputParameter": "sandbox_url"},
                {"componentInputParameter": "pipelinechannel--sandbox_url"},
            ), (name, given)
    assert found == EXPECTED[pipeline]


def test_the_component_bodies_pass_the_url_and_keep_an_explicit_one(monkeypatch):
    seen = []
    monkeypatch.setattr("codemill.runner.from_kfp", lambda name, options, **kw: seen.append((name, options)) or {})
    monkeypatch.setattr("codemill.stage.publish_kfp", lambda *a, **kw: None)
    common = dict(tracking_uri="none", parent_run_id="")
    tasks_shard.python_func(
        input="in", output="out", rank=0, world_size=1, seed=0, options={"max_tasks": 5}, sandbox_url=URL, **common
    )
    eval_score.python_func(
        output="out", options={"sandbox_url": ""}, seed=0, metrics=None, report=None, sandbox_url=URL, **common
    )
    tasks_shard.python_func(input="in", output="out", rank=0, world_size=1, seed=0, options={}, **common)
    assert seen == [
        ("tasks-shard", {"max_tasks": 5, "sandbox_url": URL}),
        ("evaluate-score", {"sandbox_url": ""}),
        ("tasks-shard", {}),
    ]


def test_rl_gets_the_url_in_its_config(monkeypatch):
    configs = []
    monkeypatch.setattr("codemill.rl.launch.run_step", lambda config, *a, **kw: configs.append(config) or {})
    monkeypatch.setattr("codemill.stage.publish_kfp", lambda *a, **kw: None)
    rl_model.python_func(
        model="m",
        tasks="t",
        output="out",
        options={"max_steps": 2.0},
        seed=0,
        gpu_count=1,
        num_nodes=1,
        gpu_node_selector={},
        gpu_tolerations=[],
        tracking_uri="none",
        parent_run_id="",
        metrics=None,
        report=None,
        sandbox_url=URL,
    )
    assert configs[0].sandbox_url == URL and configs[0].max_steps == 2

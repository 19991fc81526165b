"""The KFP component: compiles with caching off, and its body is one call into codemill.serve."""

import json
from types import SimpleNamespace

import pytest
import yaml
from kfp import compiler, dsl

from codemill.stage import InputError
from components.serve import serve_rollout


@dsl.pipeline(name="serve-only")
def serve_only(model: str, eval_dir: str, train_dir: str, output: str):
    task = serve_rollout(
        model=model,
        eval_dir=eval_dir,
        train_dir=train_dir,
        output=output,
        gate={},
        target="local",
        options={},
        tracking_uri="",
        parent_run_id="",
    )
    task.set_caching_options(False)


def test_component_compiles_with_caching_off(tmp_path):
    path = tmp_path / "serve.yaml"
    compiler.Compiler().compile(serve_only, package_path=str(path))
    spec = yaml.safe_load(path.read_text())
    inputs = spec["components"]["comp-serve-rollout"]["inputDefinitions"]
    assert set(inputs["parameters"]) == {
        "model",
        "eval_dir",
        "train_dir",
        "output",
        "gate",
        "target",
        "options",
        "tracking_uri",
        "parent_run_id",
    }
    assert set(spec["components"]["comp-serve-rollout"]["outputDefinitions"]["artifacts"]) == {"metrics", "report"}
    task = spec["root"]["dag"]["tasks"]["serve-rollout"]
    assert not task.get("cachingOptions", {}).get("enableCache", False)


class FakeMetrics:
    def __init__(self):
        self.logged = {}

    def log_metric(self, name, value):
        self.logged[name] = value


def test_component_body_runs_the_stage(tiny_model_dir, tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "train").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"humaneval": {"pass@1": 0.02}}))
    (tmp_path / "train" / "stats.json").write_text(json.dumps({"val_loss_start": 3.0, "val_loss_end": 2.0}))
    metrics, report = FakeMetrics(), SimpleNamespace(path=str(tmp_path / "report.md"))
    command = serve_rollout.python_func(
        model=tiny_model_dir,
        eval_dir=str(tmp_path / "eval"),
        train_dir=str(tmp_path / "train"),
        output=str(tmp_path / "out"),
        gate={"humaneval.pass@1": {"min": 0.5}},
        target="local",
        options={"smoke_max_tokens": 2.0},
        tracking_uri="none",
        parent_run_id="",
        metrics=metrics,
        report=report,
    )
    assert command == f"codemill serve --model {tiny_model_dir}"
    assert metrics.logged["gate_passed"] == 0.0 and metrics.logged["rolled_out"] == 0.0
    assert "humaneval.pass@1 = 0.02 fails >= 0.5" in (tmp_path / "report.md").read_text()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["target"] == "local" and stats["gate"]["checks"][0]["rules"] == {"min": 0.5}


def test_component_rejects_unknown_options(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="unknown setting"):
        serve_rollout.python_func(
            model=tiny_model_dir,
            eval_dir="",
            train_dir="",
            output=str(tmp_path),
            gate={},
            target="local",
            options={"smoke_tokens": 2},
            tracking_uri="none",
            parent_run_id="",
            metrics=FakeMetrics(),
            report=SimpleNamespace(path=str(tmp_path / "r.md")),
        )

"""The serve step locally: gate, registry (sqlite MLflow), `codemill serve` child process, smoke, alias."""

import json
import shutil

import pytest

from codemill.serve import registry
from codemill.serve.rollout import RolloutConfig, rollout
from codemill.stage import InputError
from codemill.tracking import NoOpTracker, stage_run
from tests.serve.serve_helpers import API_KEY, new_mlflow_store
from tests.serve.test_serve_kube import FakeApps


def write_inputs(root, val_loss_end: float = 5.0, perplexity: float = 250.0):
    (root / "eval").mkdir()
    (root / "train").mkdir()
    (root / "eval" / "metrics.json").write_text(
        json.dumps({"heldout": {"perplexity": perplexity, "fim_exact_match": 0.0}, "humaneval": {"pass@1": 0.0}})
    )
    (root / "train" / "stats.json").write_text(json.dumps({"val_loss_start": 6.0, "val_loss_end": val_loss_end}))
    return str(root / "eval"), str(root / "train"), str(root / "out")


@pytest.mark.slow
def test_local_rollout_registers_serves_smokes_and_moves_the_alias(tiny_model_dir, tmp_path, mlflow_template):
    uri = new_mlflow_store(tmp_path, mlflow_template)
    eval_dir, train_dir, out = write_inputs(tmp_path)
    with stage_run("serve", uri=uri) as tracker:
        stats = rollout(
            RolloutConfig(target="local", smoke_max_tokens=4, ready_timeout_s=240),
            tiny_model_dir,
            eval_dir,
            train_dir,
            out,
            tracker,
        )
        run_id = tracker.run_id
    assert stats["gate_passed"] and stats["rolled_out"], stats["decision"]
    reg = stats["registry"]
    assert (reg["version"], reg["model_uri"], reg["alias_moved"], reg["previous_alias_version"]) == (
        "1",
        "models:/codemill/1",
        True,
        None,
    )
    client = registry.client_for(uri)
    assert registry.alias_version(client, "codemill", "champion") == "1"

    smoke = stats["smoke"]
    assert smoke["passed"] and smoke["ready_s"] > 0
    assert "--model models:/codemill/1" in smoke["command"]  # the exact version, never the moving alias
    assert [(r["name"], r["status"]) for r in smoke["requests"]] == [("completion", 200), ("fim", 200), ("stream", 200)]
    assert all(r["finish_reason"] in ("stop", "length") and r["latency_s"] > 0 for r in smoke["requests"])
    assert smoke["server_exit_code"] in (0, -15)  # uvicorn re-raises the SIGTERM it handled
    assert stats["serve_command"] == f"MLFLOW_TRACKING_URI={uri} codemill serve --model models:/codemill@champion"

    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == json.loads(json.dumps(stats))
    assert "ready: serving models:/codemill/1" in (tmp_path / "out" / "server.log").read_text()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "**Decision:** rolled out models:/codemill/1 (local)" in report and stats["serve_command"] in report
    run = client.get_run(run_id)
    assert run.data.metrics["rolled_out"] == 1.0 and run.data.metrics["smoke.passed"] == 1.0
    assert {a.path for a in client.list_artifacts(run_id)} >= {"model", "stats.json", "report.md"}


def test_failed_gate_leaves_registry_and_alias_as_they_were(tiny_model_dir, tmp_path, mlflow_template):
    uri = new_mlflow_store(tmp_path, mlflow_template)
    eval_dir, train_dir, out = write_inputs(tmp_path, val_loss_end=6.5)
    with stage_run("champion", uri=uri) as tracker:
        tracker.log_artifacts(tiny_model_dir, "model")
        source = tracker.client.get_run(tracker.run_id).info.artifact_uri + "/model"
        registry.move_alias(
            tracker.client,
            "codemill",
            "champion",
            registry.register(tracker.client, tracker.run_id, source, "codemill"),
        )
    with stage_run("serve", uri=uri) as tracker:
        stats = rollout(RolloutConfig(target="local"), tiny_model_dir, eval_dir, train_dir, out, tracker)
    assert not stats["gate_passed"] and not stats["rolled_out"]
    assert stats["registry"] is None and stats["smoke"] is None
    assert stats["decision"] == ("not rolled out, serving left as it was: train.val_loss_drop = -0.5 fails > 0 (gt)")
    client = registry.client_for(uri)
    assert registry.alias_version(client, "codemill", "champion") == "1"
    assert len(client.search_model_versions("name='codemill'")) == 1
    assert stats["serve_command"] == f"codemill serve --model {tiny_model_dir}"
    assert "FAIL: train.val_loss_drop" in (tmp_path / "out" / "report.md").read_text()


def test_missing_or_bad_inputs_are_input_errors(tiny_model_dir, tmp_path):
    eval_dir, train_dir, out = write_inputs(tmp_path)
    with pytest.raises(InputError, match="no config.json"):
        rollout(RolloutConfig(), str(tmp_path), eval_dir, train_dir, out, NoOpTracker())
    with pytest.raises(InputError, match=r"metrics.json: missing \(evaluate's metrics\)"):
        rollout(RolloutConfig(), tiny_model_dir, str(tmp_path / "nowhere"), train_dir, out, NoOpTracker())
    with pytest.raises(InputError, match="gate"):
        rollout(
            RolloutConfig(gate={"heldout.perplexity": {"below": 3}}),
            tiny_model_dir,
            eval_dir,
            train_dir,
            out,
            NoOpTracker(),
        )


def test_target_auto_follows_the_cluster_and_model_defaults_to_trains(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert RolloutConfig().resolved_target() == "local"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert RolloutConfig().resolved_target() == "kubernetes"
    assert RolloutConfig(target="local").resolved_target() == "local"
    eval_dir, train_dir, out = write_inputs(tmp_path, val_loss_end=7.0)
    with pytest.raises(InputError, match=r"train/model: not a Hugging Face model directory"):
        rollout(RolloutConfig(), "", eval_dir, train_dir, out, NoOpTracker())
    shutil.copytree(tiny_model_dir, tmp_path / "train" / "model")
    stats = rollout(RolloutConfig(), "", eval_dir, train_dir, out, NoOpTracker())
    assert stats["model"] == str(tmp_path / "train" / "model") and stats["target"] == "kubernetes"
    assert not stats["gate_passed"]


# ---- champion versus challenger, against a local MLflow registry


def _inputs(root, perplexity: float, pass_at_1: float):
    (root / "eval").mkdir(parents=True)
    (root / "train").mkdir(parents=True)
    (root / "eval" / "metrics.json").write_text(
        json.dumps(
            {"heldout": {"perplexity": perplexity}, "humaneval": {"greedy": {"pass@1": pass_at_1, "tasks_total": 20}}}
        )
    )
    (root / "train" / "stats.json").write_text(json.dumps({"val_loss_start": 6.0, "val_loss_end": 5.0}))
    return str(root / "eval"), str(root / "train"), str(root / "out")


def _kube_config(server_url: str, **kw) -> RolloutConfig:
    return RolloutConfig(
        target="kubernetes", service_url=server_url, rollout_timeout_s=60, rollout_poll_s=0.01, smoke_max_tokens=4, **kw
    )


def _champion(uri, tiny_model_dir, metrics):
    """Version 1 holding @champion, registered with ``metrics`` (None: registered without any)."""
    with stage_run("champion", uri=uri) as tracker:
        tracker.log_artifacts(tiny_model_dir, "model")
        source = tracker.client.get_run(tracker.run_id).info.artifact_uri + "/model"
        tags = registry.metrics_tag(metrics) if metrics is not None else {}
        registry.move_alias(
            tracker.client,
            "codemill",
            "champion",
            registry.register(tracker.client, tracker.run_id, source, "codemill", tags=tags),
        )


CHAMPION_METRICS = {"heldout.perplexity": 250.0, "humaneval.greedy.pass@1": 0.2, "humaneval.greedy.tasks_total": 20}


def test_the_first_model_is_judged_by_the_absolute_rules_and_its_metrics_recorded(
    server, tiny_model_dir, tmp_path, mlflow_template, monkeypatch
):
    monkeypatch.setenv("CODEMILL_API_KEY", API_KEY)
    uri = new_mlflow_store(tmp_path, mlflow_template)
    with stage_run("serve", uri=uri) as tracker:
        stats = rollout(
            _kube_config(server.url), tiny_model_dir, *_inputs(tmp_path, 250.0, 0.2), tracker, kube_api=FakeApps()
        )
    assert stats["rolled_out"], stats["decision"]
    assert stats["champion"] == {
        "version": None,
        "passed": True,
        "note": "no version of codemill holds @champion yet: the first model is judged by the absolute rules",
    }
    client = registry.client_for(uri)
    assert registry.alias_version(client, "codemill", "champion") == "1"
    assert registry.version_metrics(client, "codemill", "1") == CHAMPION_METRICS
    assert "no version of codemill holds @champion" in (tmp_path / "out" / "report.md").read_text()


def test_a_worse_challenger_is_refused_and_the_champion_keeps_the_alias(tiny_model_dir, tmp_path, mlflow_template):
    uri = new_mlflow_store(tmp_path, mlflow_template)
    _champion(uri, tiny_model_dir, CHAMPION_METRICS)
    api = FakeApps()
    with stage_run("serve", uri=uri) as tracker:  # passes the absolute rules, loses to the champion
        stats = rollout(
            _kube_config("http://127.0.0.1:9"), tiny_model_dir, *_inputs(tmp_path, 260.0, 0.25), tracker, kube_api=api
        )
    assert stats["gate"]["passed"] and not stats["gate_passed"] and not stats["rolled_out"]
    champion = stats["champion"]
    assert (champion["version"], champion["passed"]) == ("1", False)
    refused = [c for c in champion["checks"] if not c["passed"]]
    assert [(c["metric"], c["challenger"], c["champion"]) for c in refused] == [("heldout.perplexity", 260.0, 250.0)]
    assert stats["decision"] == (
        "not rolled out, serving left as it was: champion v1: heldout.perplexity = 260 "
        "regresses: champion 250, lower is better, allowed <= 250 (max_regression 0)"
    )
    client = registry.client_for(uri)
    assert registry.alias_version(client, "codemill", "champion") == "1"
    assert len(client.search_model_versions("name='codemill'")) == 1  # a refused model is not registered
    assert api.patches == [] and stats["smoke"] is None
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| `heldout.perplexity` | lower | 260 | 250 | 250 | REFUSED: " in report
    assert "| `humaneval.greedy.pass@1` | higher | 0.25 | 0.2 | 0.2 | pass |" in report


def test_a_challenger_within_max_regression_takes_the_alias(
    server, tiny_model_dir, tmp_path, mlflow_template, monkeypatch
):
    monkeypatch.setenv("CODEMILL_API_KEY", API_KEY)
    uri = new_mlflow_store(tmp_path, mlflow_template)
    _champion(uri, tiny_model_dir, CHAMPION_METRICS)
    with stage_run("serve", uri=uri) as tracker:
        stats = rollout(
            _kube_config(server.url, max_regression=0.05),
            tiny_model_dir,
            *_inputs(tmp_path, 260.0, 0.25),
            tracker,
            kube_api=FakeApps(),
        )
    assert stats["champion"]["passed"] and stats["rolled_out"], stats["decision"]
    assert stats["registry"]["previous_alias_version"] == "1" and stats["registry"]["alias_moved"]
    client = registry.client_for(uri)
    assert registry.alias_version(client, "codemill", "champion") == "2"
    assert registry.version_metrics(client, "codemill", "2")["heldout.perplexity"] == 260.0


def test_a_champion_registered_without_metrics_leaves_the_absolute_rules(tiny_model_dir, tmp_path, mlflow_template):
    uri = new_mlflow_store(tmp_path, mlflow_template)
    _champion(uri, tiny_model_dir, None)
    with stage_run("serve", uri=uri) as tracker:  # the absolute gate fails here: nothing is deployed
        stats = rollout(
            _kube_config("http://127.0.0.1:9"),
            tiny_model_dir,
            *write_inputs(tmp_path, val_loss_end=6.5),
            tracker,
            kube_api=FakeApps(),
        )
    assert stats["champion"] == {
        "version": "1",
        "model_uri": "models:/codemill/1",
        "passed": True,
        "note": "version 1 was registered without metrics: judged by the absolute rules",
    }
    assert stats["decision"] == "not rolled out, serving left as it was: train.val_loss_drop = -0.5 fails > 0 (gt)"


def test_max_regression_below_zero_is_an_input_error():
    with pytest.raises(InputError, match="max_regression"):
        RolloutConfig(max_regression=-0.1).ensure_valid()


def test_the_step_logs_its_config_once_and_its_outputs_as_artifacts(tiny_model_dir, tmp_path, mlflow_template, capsys):
    from codemill import runner

    uri = new_mlflow_store(tmp_path, mlflow_template)
    eval_dir, train_dir, out = write_inputs(tmp_path, val_loss_end=6.5)  # the gate refuses: nothing is served
    with stage_run("serve", uri=uri) as tracker:
        stats = runner.run(
            "serve-rollout",
            RolloutConfig(target="local"),
            output=out,
            tracker=tracker,
            model=tiny_model_dir,
            eval_dir=eval_dir,
            train_dir=train_dir,
        )
        run_id = tracker.run_id
    assert not stats["gate_passed"]
    assert capsys.readouterr().out.count("config: {") == 1  # the runner logs it; the step does not again
    client = registry.client_for(uri)
    assert {a.path for a in client.list_artifacts(run_id)} == {"stats.json", "report.md"}
    artifacts = client.download_artifacts(run_id, "stats.json", str(tmp_path))
    assert json.loads(open(artifacts).read()) == json.loads((tmp_path / "out" / "stats.json").read_text())


def test_a_champion_with_nothing_comparable_says_so_instead_of_passing_an_empty_comparison(
    tiny_model_dir, tmp_path, mlflow_template
):
    uri = new_mlflow_store(tmp_path, mlflow_template)
    _champion(uri, tiny_model_dir, {"humaneval.greedy.tasks_total": 20})  # no perplexity, no pass@k
    with stage_run("serve", uri=uri) as tracker:
        stats = rollout(
            _kube_config("http://127.0.0.1:9"),
            tiny_model_dir,
            *write_inputs(tmp_path, val_loss_end=6.5),
            tracker,
            kube_api=FakeApps(),
        )
    assert stats["champion"] == {
        "version": "1",
        "model_uri": "models:/codemill/1",
        "passed": True,
        "note": "version 1 was registered with no metric to compare (held-out perplexity or pass@k): "
        "judged by the absolute rules",
    }
    assert "no metric to compare" in (tmp_path / "out" / "report.md").read_text()

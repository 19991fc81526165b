"""MLflow tracking: parent and nested runs in a local store; fail fast on a dead server."""

import socket

import pytest
from mlflow.tracking import MlflowClient

from codemill import tracking


def test_parent_and_nested_stage_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parent = tracking.start_pipeline_run(uri, kfp_run_id="kfp-123")
    with tracking.stage_run("validate", uri=uri, parent_run_id=parent) as t:
        t.log_params({"max_repos": 3, "nested": {"a": 1}})
        t.log_metrics({"kept": 10, "quarantined": 2})
        (tmp_path / "report.md").write_text("# report")
        t.log_artifact(str(tmp_path / "report.md"))
    run = MlflowClient(uri).get_run(t.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags["kfp.run_id"] == "kfp-123"
    assert run.data.params == {"max_repos": "3", "nested.a": "1"}
    assert run.data.metrics == {"kept": 10.0, "quarantined": 2.0}
    assert run.info.status == "FINISHED"
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts beside the store, not in the CWD


def test_failed_stage_marks_run_failed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RuntimeError), tracking.stage_run("dedup", uri=uri) as t:
        raise RuntimeError("boom")
    assert MlflowClient(uri).get_run(t.run_id).info.status == "FAILED"


def test_disabled_tracking_is_a_noop(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with tracking.stage_run("validate", uri="") as t:
        t.log_metrics({"x": 1})
    assert isinstance(t, tracking.NoOpTracker)
    with tracking.stage_run("validate", uri="http://127.0.0.1:1", enabled=False) as t:
        assert isinstance(t, tracking.NoOpTracker)


def test_unreachable_server_fails_fast_naming_the_uri():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    with (
        pytest.raises(tracking.TrackingUnavailable, match=f"127.0.0.1:{port}.*unreachable"),
        tracking.stage_run("validate", uri=uri),
    ):
        pass


def test_param_names_mlflow_refuses_are_made_safe(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking.stage_run("serve", uri=uri) as t:
        t.log_params({"gate": {"humaneval.greedy.pass@1": {"min": 0.1}}})
        run_id = t.run_id
    params = tracking._client(uri).get_run(run_id).data.params
    assert params == {"gate.humaneval.greedy.pass_1.min": "0.1"}

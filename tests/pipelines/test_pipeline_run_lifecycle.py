"""A run's first and last task: start_run opens the MLflow parent run, the exit handler
(finish_run) closes it with the pipeline's final state, here through kfp.local."""

import json

import pytest
from kfp import dsl
from mlflow.tracking import MlflowClient

from codemill import runs
from codemill.pipeline_cli import init_local
from components.run import finish_run, start_run


@dsl.pipeline(name="lifecycle")
def lifecycle(work_root: str, tracking_uri: str, gpu_count: str = "2"):
    """codemill_pipeline's frame, without the stages."""
    closing = finish_run(work_root=work_root, run_name="r1", kfp_run_id="local", tracking_uri=tracking_uri)
    with dsl.ExitHandler(closing):
        start_run(
            work_root=work_root,
            run_name="r1",
            kfp_run_id="local",
            tracking_uri=tracking_uri,
            num_shards=2,
            gpu_count=gpu_count,
        )


def test_the_exit_handler_finishes_the_parent_run_under_kfp_local(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    init_local(str(tmp_path / "kfp"))
    lifecycle(work_root=str(tmp_path / "runs"), tracking_uri=uri)
    record = json.loads((tmp_path / "runs" / "r1" / "run.json").read_text())
    assert record["final_state"] == "SUCCEEDED" and record["mlflow_status"] == "FINISHED"
    info = MlflowClient(uri).get_run(record["parent_run_id"]).info
    assert info.status == "FINISHED" and info.end_time is not None


@pytest.mark.parametrize("state,status", [("FAILED", "FAILED"), ("CANCELED", "KILLED"), ("SUCCEEDED", "FINISHED")])
def test_finish_run_maps_the_kfp_state_to_the_mlflow_status(tmp_path, state, status):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    layout = runs.start_run(str(tmp_path), "", "kfp-123", uri, 1)
    assert MlflowClient(uri).get_run(layout.parent_run_id).info.status == "RUNNING"
    assert runs.finish_run(str(tmp_path), "", "kfp-123", "", state) == status  # "" = the URI start_run recorded
    assert MlflowClient(uri).get_run(layout.parent_run_id).info.status == status


def test_finish_run_without_a_run_folder_has_nothing_to_close(tmp_path, capsys):
    assert runs.finish_run(str(tmp_path), "never-started", "kfp-1", "none", "FAILED") == "FAILED"
    assert "stopped before start_run" in capsys.readouterr().out


@pytest.mark.parametrize("value,count", [("0", 0), ("1", 1), (" 8 ", 8)])
def test_gpu_count_is_a_string_parameter_read_as_a_whole_number(tmp_path, value, count):
    assert runs.start_run(str(tmp_path), "r", "k", "none", 1, gpu_count=value).gpu_count == count


@pytest.mark.parametrize("value", ["", "1.5", "-1", "two"])
def test_a_gpu_count_that_is_not_a_whole_number_fails_the_first_task(tmp_path, value):
    with pytest.raises(ValueError, match="gpu_count"):
        runs.start_run(str(tmp_path), "r", "k", "none", 1, gpu_count=value)

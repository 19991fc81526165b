"""The first and the last task of a pipeline run: lay out where each stage writes and open
the MLflow parent run; at exit, close that run with the pipeline's final state."""

from typing import NamedTuple

from kfp import dsl

from components._common import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def start_run(
    work_root: str,
    run_name: str,
    kfp_run_id: str,
    tracking_uri: str,
    num_shards: int,
    gpu_count: str = "1",
    pipeline: str = "codemill",
) -> NamedTuple(
    "RunLayout",
    run_dir=str,
    parent_run_id=str,
    shards=list[int],
    validate_dir=str,
    dedup_dir=str,
    pack_dir=str,
    train_dir=str,
    eval_dir=str,
    serve_dir=str,
    tasks_dir=str,
    synth_dir=str,
    sft_dir=str,
    rl_dir=str,
    posttrain_evaluate_dir=str,
    posttrain_serve_dir=str,
    gpu_count=int,
):
    """Create the run's layout under ``work_root`` and the MLflow parent run.

    Args:
        work_root: URL under which every run gets its own folder (local path or s3://).
        run_name: folder name of this run; empty means the KFP run id.
        kfp_run_id: the KFP run id (tags the MLflow runs).
        tracking_uri: MLflow tracking URI; empty means $MLFLOW_TRACKING_URI; "none" disables.
        num_shards: how many shards the data stages fan out to.
        gpu_count: the pipeline's ``gpu_count`` (a string: resource placeholders resolve only
            from string parameters); returned as a number for the steps that launch torchrun.
        pipeline: codemill, posttrain or r1: which stage folders to create (codemill.runs.PIPELINE_STAGES).
    """
    from codemill.runs import start_run as _start_run

    return _start_run(work_root, run_name, kfp_run_id, tracking_uri, num_shards, gpu_count, pipeline)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def finish_run(
    work_root: str, run_name: str, kfp_run_id: str, tracking_uri: str, status: dsl.PipelineTaskFinalStatus
) -> str:
    """The pipeline's exit handler: end the MLflow parent run with the run's final state.

    Runs after every other task, also when one failed, so a cluster run never leaves its
    parent run open. It reads the parent run id from the run's ``run.json`` (an exit task
    cannot take another task's outputs).

    Args:
        work_root: the pipeline's work_root.
        run_name: the pipeline's run_name (empty means the KFP run id).
        kfp_run_id: the KFP run id.
        tracking_uri: MLflow tracking URI; empty means the one start_run recorded.
        status: the pipeline's final state, filled in by KFP.

    Returns:
        The MLflow status the parent run ended with (FINISHED, FAILED or KILLED).
    """
    from codemill.runs import finish_run as _finish_run

    return _finish_run(work_root, run_name, kfp_run_id, tracking_uri, status.state)

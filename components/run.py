"""The first task of a pipeline run: lay out where each stage writes, open the MLflow parent run."""

from typing import List, NamedTuple

from kfp import dsl

from components._common import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def start_run(work_root: str, run_name: str, kfp_run_id: str, tracking_uri: str, num_shards: int) -> NamedTuple(
    "RunLayout",
    run_dir=str, parent_run_id=str, shards=List[int],
    validate_dir=str, dedup_dir=str, pack_dir=str, train_dir=str, eval_dir=str, serve_dir=str,
):
    """Create the run's layout under ``work_root`` and the MLflow parent run.

    Args:
        work_root: URL under which every run gets its own folder (local path or s3://).
        run_name: folder name of this run; empty means the KFP run id.
        kfp_run_id: the KFP run id (tags the MLflow runs).
        tracking_uri: MLflow tracking URI; empty means $MLFLOW_TRACKING_URI; "none" disables.
        num_shards: how many shards the data stages fan out to.
    """
    from codemill.runs import start_run as _start_run

    return _start_run(work_root, run_name, kfp_run_id, tracking_uri, num_shards)

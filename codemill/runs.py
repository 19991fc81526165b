"""A pipeline run's layout: one folder per run, one subfolder per stage, and the summary.

``<work_root>/<run_name>/<stage>/`` for each stage of the pipeline (``PIPELINE_STAGES``)
plus ``run.json`` (the MLflow parent run and the KFP run id; ``finish_run`` adds the final
state). The local runner reads the stages' ``stats.json`` back into ``summary.json``.
The default pipeline runs pretraining then post-training (``STAGES``); ``posttrain`` is
the post-training part alone (its data stages only feed the tasks); ``r1`` is the
multi-stage recipe of docs/pipelines.md.
"""

from __future__ import annotations

from collections import namedtuple

from codemill import io, tracking

PRETRAIN_STAGES = ("validate", "dedup", "pack", "train", "evaluate", "serve")
# Post-training: the tasks come from dedup's output, the rest from the pretrained (or given) model.
POSTTRAIN_STAGES = ("tasks", "synth", "sft", "rl", "posttrain_evaluate", "posttrain_serve")
STAGES = PRETRAIN_STAGES + POSTTRAIN_STAGES
# DeepSeek-R1's chain (docs/pipelines.md): each model has its own evaluate folder.
R1_MODELS = ("r1_zero", "r1_sft_cold", "r1_rl", "r1_sft_rejection", "r1_distill")
R1_STAGES = (
    (
        "validate",
        "dedup",
        "tasks",
        "r1_zero",
        "r1_coldstart",
        "r1_sft_cold",
        "r1_rl",
        "r1_rejection",
        "r1_sft_rejection",
        "r1_distill",
    )
    + tuple(f"{m}_evaluate" for m in R1_MODELS)
    + ("r1_compare", "r1_serve")
)
PIPELINE_STAGES = {
    "codemill": STAGES,
    "posttrain": ("validate", "dedup") + POSTTRAIN_STAGES,
    "r1": R1_STAGES,
}

RunLayout = namedtuple(
    "RunLayout",
    ["run_dir", "parent_run_id", "shards"]
    + [f"{'eval' if s == 'evaluate' else s}_dir" for s in STAGES]
    + ["gpu_count"],
)

# KFP's PipelineTaskFinalStatus.state -> the MLflow status the parent run ends with.
_MLFLOW_STATUS = {"SUCCEEDED": "FINISHED", "CANCELED": "KILLED", "CANCELLED": "KILLED", "CANCELING": "KILLED"}


def parse_gpu_count(value: str) -> int:
    """The ``gpu_count`` pipeline parameter as a number.

    It is a string because the KFP 2.17 driver fills resource placeholders from string
    parameters only (docs/deploy.md); the train step also needs it as an int (torchrun).
    """
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"pipeline parameter gpu_count must be a whole number of GPUs, got {value!r}")
    return int(text)


def start_run(
    work_root: str,
    run_name: str,
    kfp_run_id: str,
    tracking_uri: str,
    num_shards: int,
    gpu_count: str = "1",
    pipeline: str = "codemill",
) -> RunLayout:
    """Make the run folder and its stage folders, open (or reopen) the MLflow parent run.

    Every stage folder of ``STAGES`` is in the returned layout (a pipeline wires the ones
    it runs); only the stages of ``pipeline`` are created.
    """
    if pipeline not in PIPELINE_STAGES:
        raise ValueError(f"pipeline must be one of {sorted(PIPELINE_STAGES)}, got {pipeline!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    gpus = parse_gpu_count(gpu_count)
    run_dir = io.join(work_root, run_name or kfp_run_id)
    existing = io.join(run_dir, "run.json")
    if io.exists(existing):  # a retried first task: keep the parent run it already made
        parent = io.read_json(existing).get("parent_run_id", "")
    else:
        parent = tracking.start_pipeline_run(tracking_uri, kfp_run_id, run_name=run_name or kfp_run_id)
        io.write_json(
            existing,
            {
                "kfp_run_id": kfp_run_id,
                "parent_run_id": parent,
                "tracking_uri": tracking.resolve_uri(tracking_uri) or "",
            },
        )
    for stage in PIPELINE_STAGES[pipeline]:
        io.makedirs(io.join(run_dir, stage))
    dirs = [io.join(run_dir, s) for s in STAGES]
    return RunLayout(run_dir, parent, list(range(num_shards)), *dirs, gpus)


def finish_run(work_root: str, run_name: str, kfp_run_id: str, tracking_uri: str, state: str) -> str:
    """End the run's MLflow parent run with the pipeline's final state; returns the MLflow status.

    The exit handler of the pipeline calls this on a cluster, after every other task,
    whether they succeeded or not. A run whose first task never wrote ``run.json`` has no
    parent run to close.
    """
    status = _MLFLOW_STATUS.get(state.upper(), "FAILED")
    run_json = io.join(work_root, run_name or kfp_run_id, "run.json")
    if not io.exists(run_json):
        print(f"no {run_json}: the run stopped before start_run, no MLflow run to finish")
        return status
    record = io.read_json(run_json)
    tracking.finish_pipeline_run(
        tracking_uri or record.get("tracking_uri", ""), record.get("parent_run_id", ""), status=status
    )
    io.write_json(run_json, {**record, "final_state": state, "mlflow_status": status})
    return status


def collect_summary(run_dir: str, stages: tuple = STAGES) -> dict:
    """Per stage, in ``stages`` order: output location, report and stats (stages that did not run are absent)."""
    summary: dict = {"run_dir": run_dir, "stages": {}}
    run_json = io.join(run_dir, "run.json")
    if io.exists(run_json):
        summary["mlflow"] = io.read_json(run_json)
    for stage in stages:
        out = io.join(run_dir, stage)
        stats_url = io.join(out, "stats.json")
        if not io.exists(stats_url):
            continue
        entry = {"output": out, "stats": io.read_json(stats_url)}
        for name in ("report.html", "report.md"):
            if io.exists(io.join(out, name)):
                entry["report"] = io.join(out, name)
                break
        summary["stages"][stage] = entry
    # r1: each stage's model was registered by the comparison; show its version with the stage
    for row in summary["stages"].get("r1_compare", {}).get("stats", {}).get("stages", []):
        if row.get("stage") in summary["stages"]:
            summary["stages"][row["stage"]]["model_version"] = row.get("registry")
    return summary

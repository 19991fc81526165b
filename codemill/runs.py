"""A pipeline run's layout: one folder per run, one subfolder per stage, and the summary.

``<work_root>/<run_name>/{validate,dedup,pack,train,evaluate,serve}/`` plus
``run.json`` (the MLflow parent run and the KFP run id). The local runner reads the
stages' ``stats.json`` back into ``summary.json``.
"""

from __future__ import annotations

from collections import namedtuple

from codemill import io, tracking

STAGES = ("validate", "dedup", "pack", "train", "evaluate", "serve")

RunLayout = namedtuple(
    "RunLayout",
    ["run_dir", "parent_run_id", "shards"] + [f"{'eval' if s == 'evaluate' else s}_dir" for s in STAGES],
)


def start_run(work_root: str, run_name: str, kfp_run_id: str, tracking_uri: str, num_shards: int) -> RunLayout:
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    run_dir = io.join(work_root, run_name or kfp_run_id)
    existing = io.join(run_dir, "run.json")
    if io.exists(existing):  # a retried first task: keep the parent run it already made
        parent = io.read_json(existing).get("parent_run_id", "")
    else:
        parent = tracking.start_pipeline_run(tracking_uri, kfp_run_id, run_name=run_name or kfp_run_id)
        io.write_json(existing, {"kfp_run_id": kfp_run_id, "parent_run_id": parent,
                                 "tracking_uri": tracking.resolve_uri(tracking_uri) or ""})
    dirs = [io.join(run_dir, s) for s in STAGES]
    for d in dirs:
        io.makedirs(d)
    return RunLayout(run_dir, parent, list(range(num_shards)), *dirs)


def collect_summary(run_dir: str) -> dict:
    """Per stage: output location, report and stats (stages that did not run are absent)."""
    summary: dict = {"run_dir": run_dir, "stages": {}}
    run_json = io.join(run_dir, "run.json")
    if io.exists(run_json):
        summary["mlflow"] = io.read_json(run_json)
    for stage in STAGES:
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
    return summary

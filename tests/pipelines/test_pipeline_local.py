"""The whole pipeline through kfp.local on a small built-in corpus: every stage does its job,
pretraining then post-training of the pretrained model.

This is the test `make run` stands on: the same pipeline function, the same components,
a smaller corpus and fewer training steps.
"""

import json
import os

import pytest
from mlflow.tracking import MlflowClient

from codemill.pipeline_cli import run_local

LOCAL_PARAMS = {
    "num_shards": 2,
    "validate_options": {"max_repos": 8},
    "train_options": {"max_steps": 60},
    "eval_options": {"limit": 4, "max_new_tokens": 32},
    "tasks_options": {"max_tasks": 20},
    "sft_options": {"max_steps": 4},
    "rl_options": {
        "max_steps": 1,
        "num_generations": 2,
        "prompts_per_step": 2,
        "max_completion_tokens": 16,
        "heldout_tasks": 2,
        "eval_every": 0,
        "eval_generations": 1,
    },
    "posttrain_eval_options": {"prompt_style": "chat", "limit": 4, "max_new_tokens": 32},
}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("pipeline"))
    return run_local(workdir, dict(LOCAL_PARAMS), run_name="e2e")


@pytest.mark.slow
def test_every_stage_ran_and_wrote_stats(summary):
    assert list(summary["stages"]) == [
        "validate",
        "dedup",
        "pack",
        "train",
        "evaluate",
        "serve",
        "tasks",
        "synth",
        "sft",
        "rl",
        "posttrain_evaluate",
        "posttrain_serve",
    ]
    for stage, entry in summary["stages"].items():
        assert os.path.exists(entry["report"]), stage
    on_disk = json.load(open(summary["summary_path"]))
    assert on_disk["stages"]["validate"]["stats"] == summary["stages"]["validate"]["stats"]


@pytest.mark.slow
def test_counts_add_up_across_stages(summary):
    v = summary["stages"]["validate"]["stats"]
    assert v["input_records"] == v["kept"] + v["quarantined"] and v["kept"] > 0
    d = summary["stages"]["dedup"]["stats"]
    assert d["input_files"] == v["kept"]
    assert d["input_files"] == d["kept_files"] + d["removed_exact_files"] + d["removed_near_files"]
    p = summary["stages"]["pack"]["stats"]
    assert p["tokens"] > 0 and p["packing_efficiency"] >= 0.99


@pytest.mark.slow
def test_training_lowered_validation_loss(summary):
    t = summary["stages"]["train"]["stats"]
    assert t["steps"] == LOCAL_PARAMS["train_options"]["max_steps"]
    assert t["val_loss_end"] < t["val_loss_start"]


@pytest.mark.slow
def test_evaluate_and_serve_results_in_summary(summary):
    e = summary["stages"]["evaluate"]["stats"]
    assert "humaneval" in e
    s = summary["stages"]["serve"]["stats"]
    assert "gate" in s and "smoke" in s


@pytest.mark.slow
def test_post_training_starts_from_the_pretrained_model_and_faces_its_champion(summary):
    stages = summary["stages"]
    assert stages["synth"]["stats"]["skipped"]  # no teacher_url by default
    assert stages["sft"]["stats"]["examples"] > 0
    post = stages["posttrain_serve"]["stats"]
    assert post["model"] == stages["rl"]["output"] + "/model"
    if stages["serve"]["stats"]["rolled_out"]:  # the pretrained model holds @champion: the comparison ran
        assert post["champion"]["version"] == stages["serve"]["stats"]["registry"]["version"]
        assert post["champion"]["checks"], post["champion"]


@pytest.mark.slow
def test_mlflow_parent_run_with_a_nested_run_per_stage(summary):
    client = MlflowClient(summary["tracking_uri"])
    parent = summary["mlflow"]["parent_run_id"]
    exp = client.get_run(parent).info.experiment_id
    children = client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    # the tag holds the step's run name (codemill.steps: "validate-shard-1", "evaluate-generate", "sft")
    stages = {r.data.tags["codemill.stage"].split("-")[0] for r in children}
    assert {"validate", "dedup", "pack", "train", "evaluate", "serve", "tasks", "synth", "sft", "rl"} <= stages

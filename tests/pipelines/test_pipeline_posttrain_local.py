"""The standalone post-training pipeline through kfp.local on a tiny corpus and a tiny base model:
tasks mined, synth skipped with its reason, sft on the tasks, rl from the sft model, the
post-trained model evaluated in instruct mode and put through the gated rollout."""

import json
import os

import pytest
from mlflow.tracking import MlflowClient

from codemill.pipeline_cli import run_local
from codemill.runs import PIPELINE_STAGES

PARAMS = {
    "num_shards": 1,
    "validate_options": {"max_repos": 6},
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
    "eval_options": {"prompt_style": "chat", "limit": 2, "max_new_tokens": 16, "benchmarks": ["humaneval"]},
}


@pytest.fixture(scope="module")
def summary(tmp_path_factory, tiny_model_dir):
    workdir = str(tmp_path_factory.mktemp("posttrain"))
    return run_local(workdir, {**PARAMS, "base_model": tiny_model_dir}, run_name="post", pipeline="posttrain")


@pytest.mark.slow
def test_every_post_training_stage_ran_in_order(summary):
    assert summary["pipeline"] == "posttrain"
    assert list(summary["stages"]) == list(PIPELINE_STAGES["posttrain"])
    assert json.load(open(summary["summary_path"]))["stages"].keys() == summary["stages"].keys()
    for stage, entry in summary["stages"].items():
        assert os.path.exists(entry["report"]), stage


@pytest.mark.slow
def test_synth_skips_without_a_teacher_and_sft_trains_on_the_tasks(summary):
    stages = summary["stages"]
    assert stages["synth"]["stats"]["skipped"] and "teacher" in stages["synth"]["stats"]["reason"]
    sft = stages["sft"]["stats"]
    assert not sft.get("skipped") and sft["examples"] > 0
    assert list(sft["left_out"]) == [stages["synth"]["output"]]
    assert os.path.exists(os.path.join(stages["sft"]["output"], "model", "config.json"))


@pytest.mark.slow
def test_rl_starts_from_the_sft_model_and_evaluation_is_instruct_mode(summary):
    stages = summary["stages"]
    assert stages["rl"]["stats"]["steps"] == PARAMS["rl_options"]["max_steps"]
    evaluated = stages["posttrain_evaluate"]["stats"]
    generated = evaluated["generation"]["benchmarks"]
    assert generated["humaneval"]["prompt_style"] == "chat" and "humaneval" in evaluated
    assert generated["tasks"]["url"] == stages["tasks"]["output"]  # the mined tasks' held-out split, scored per kind
    assert "tasks" in evaluated and evaluated["generation"]["model"] == os.path.join(stages["rl"]["output"], "model")


@pytest.mark.slow
def test_the_post_trained_model_went_through_the_gate_and_the_registry(summary):
    served = summary["stages"]["posttrain_serve"]["stats"]
    assert served["model"].startswith(summary["stages"]["rl"]["output"])
    assert served["gate"]["passed"], served["decision"]
    version = served["registry"]["version"]
    mv = MlflowClient(summary["tracking_uri"]).get_model_version("codemill-instruct", version)
    assert mv.tags["codemill.source"] == served["model"]

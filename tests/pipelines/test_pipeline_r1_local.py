"""The r1 chain through kfp.local on a tiny corpus and the tests' tiny model: every stage ran in
order, the served teacher answered, the empty data stages made the sft steps skip with their
reason, every model was evaluated, registered with its stage and compared, and the best rolled out."""

import os

import pytest
from mlflow.tracking import MlflowClient

from codemill.pipeline_cli import run_local
from codemill.runs import PIPELINE_STAGES, R1_MODELS

RL = {
    "max_steps": 1,
    "num_generations": 2,
    "prompts_per_step": 2,
    "max_completion_tokens": 16,
    "heldout_tasks": 2,
    "eval_every": 0,
    "eval_generations": 1,
    "format_weight": 0.1,
}
SYNTH = {"samples_per_task": 1, "max_tasks": 2, "max_tokens": 16, "kinds": ["generate"]}
PARAMS = {
    "num_shards": 1,
    "validate_options": {"max_repos": 6},
    "zero_options": RL,
    "rl_options": RL,
    "coldstart_options": SYNTH,
    "rejection_options": SYNTH,
    "eval_options": {"limit": 2, "max_new_tokens": 16, "benchmarks": ["humaneval", "stdio"]},
}


@pytest.fixture(scope="module")
def summary(tmp_path_factory, tiny_model_dir):
    workdir = str(tmp_path_factory.mktemp("r1"))
    params = {**PARAMS, "base_model": tiny_model_dir, "student_model": tiny_model_dir}
    return run_local(workdir, params, run_name="r1", pipeline="r1")


@pytest.mark.slow
def test_every_r1_stage_ran_in_order(summary):
    assert list(summary["stages"]) == list(PIPELINE_STAGES["r1"])
    for stage, entry in summary["stages"].items():
        assert os.path.exists(entry["report"]), stage


@pytest.mark.slow
def test_the_served_teacher_answered_and_empty_data_made_sft_skip(summary):
    stages = summary["stages"]
    for data, sft in (("r1_coldstart", "r1_sft_cold"), ("r1_rejection", "r1_sft_rejection")):
        synth = stages[data]["stats"]
        assert synth["teacher"]["target"] == "local" and synth["answered"] == synth["requested"] > 0
        if synth["kept"] == 0:
            assert stages[sft]["stats"]["skipped"] and "kept 0 samples" in stages[sft]["stats"]["reason"]
    assert stages["r1_zero"]["stats"]["config"]["format_weight"] == RL["format_weight"]
    assert stages["r1_zero"]["stats"]["data"]["problems"]["kept"] == 13  # the bundled problems


@pytest.mark.slow
def test_every_model_is_registered_with_its_stage_and_the_best_is_served(summary):
    client = MlflowClient(summary["tracking_uri"])
    compared = summary["stages"]["r1_compare"]["stats"]
    assert [r["stage"] for r in compared["stages"]] == list(R1_MODELS)
    for row in compared["stages"]:
        version = client.get_model_version("codemill-r1", row["registry"]["version"])
        assert version.tags["codemill.stage"] == row["stage"]
        assert summary["stages"][row["stage"]]["model_version"] == row["registry"]
        assert set(row["pass@1"]) >= {"humaneval", "stdio"}
    served = summary["stages"]["r1_serve"]["stats"]
    assert served["model"] == compared["best"]["model"] and served["gate"]["passed"]

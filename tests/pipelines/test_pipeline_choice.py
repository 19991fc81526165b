"""`--pipeline codemill|posttrain|r1`: each pipeline's own parameters, stage folders and summary order."""

import json
import os

import pytest

from codemill import runs
from codemill.pipeline_cli import PIPELINES, parse_params, pipeline_function
from codemill.stage import InputError


def test_parameters_are_read_against_the_chosen_pipeline():
    assert parse_params(["problems=s3://b/p.jsonl", "num_shards=3"], "r1") == {
        "problems": "s3://b/p.jsonl",
        "num_shards": 3,
    }
    assert parse_params(["base_model=models:/codemill@champion"], "posttrain") == {
        "base_model": "models:/codemill@champion"
    }
    with pytest.raises(InputError, match="problems: not a pipeline parameter"):
        parse_params(["problems=x"], "codemill")
    with pytest.raises(InputError, match="unknown pipeline 'r2'"):
        pipeline_function("r2")


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_every_pipeline_is_named_as_its_cli_choice(pipeline):
    assert pipeline_function(pipeline).name == pipeline


def test_a_run_makes_only_its_pipelines_stage_folders(tmp_path):
    layout = runs.start_run(str(tmp_path), "r", "k", "none", 1, pipeline="r1")
    made = set(os.listdir(layout.run_dir)) - {"run.json"}
    assert made == set(runs.PIPELINE_STAGES["r1"]) and "pack" not in made
    with pytest.raises(ValueError, match="pipeline must be one of"):
        runs.start_run(str(tmp_path), "r2", "k", "none", 1, pipeline="nope")


def test_the_summary_lists_stages_in_the_pipelines_order(tmp_path):
    run_dir = tmp_path / "run"
    version = {"name": "codemill-r1", "version": "1", "model_uri": "models:/codemill-r1/1"}
    stats = {"r1_compare": {"stages": [{"stage": "r1_zero", "registry": version}]}}
    for stage in ("r1_compare", "validate", "r1_zero"):
        (run_dir / stage).mkdir(parents=True)
        (run_dir / stage / "stats.json").write_text(json.dumps(stats.get(stage, {"stage": stage})))
    summary = runs.collect_summary(str(run_dir), runs.PIPELINE_STAGES["r1"])
    assert list(summary["stages"]) == ["validate", "r1_zero", "r1_compare"]
    assert summary["stages"]["r1_zero"]["model_version"] == version  # registered by the comparison

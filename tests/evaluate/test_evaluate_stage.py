"""The whole stage with the tiny model: generate, then score, outputs and determinism."""

import json
import os

import pytest

from codemill.evaluate import EvalConfig, evaluate, generate, score
from codemill.evaluate.infilling import load_tasks as infill_tasks
from codemill.stage import InputError

CONFIG = EvalConfig(
    limit=2,
    n_samples=2,
    k=[1, 2],
    max_new_tokens=16,
    batch_size=8,
    heldout_spans=6,
    ppl_sequences=3,
    workers=2,
    timeout=3.0,
    threads=1,
)


@pytest.fixture(scope="module")
def run(tiny_model_dir, pack_dir, tmp_path_factory):
    from tests.evaluate.conftest import RecordingTracker

    out = str(tmp_path_factory.mktemp("eval"))
    tracker = RecordingTracker()
    stats = evaluate(CONFIG, tiny_model_dir, pack_dir, out, tracker)
    return out, stats, tracker


def test_outputs_and_metrics(run):
    out, stats, tracker = run
    for name in (
        "results.jsonl",
        "metrics.json",
        "report.html",
        "stats.json",
        "generation.json",
        "samples/humaneval.jsonl",
        "samples/humaneval_infill.jsonl",
        "samples/stdio.jsonl",
        "samples/heldout_fim.jsonl",
    ):
        assert os.path.exists(os.path.join(out, name)), name
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert set(metrics) == {"humaneval", "humaneval_infill", "stdio", "heldout"}
    assert set(metrics["humaneval"]) == {"greedy", "sampled"}
    assert {"pass@1", "pass@2"} <= set(metrics["humaneval"]["sampled"]) and metrics["humaneval"]["sampled"][
        "samples"
    ] == 4
    assert "pass@2" not in metrics["humaneval"]["greedy"]
    assert set(metrics["humaneval_infill"]) == {"greedy"} and "exact_match" in metrics["humaneval_infill"]["greedy"]
    assert metrics["heldout"]["fim_spans"] == 6 and metrics["heldout"]["perplexity"] > 1
    rows = [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]
    infill = len(infill_tasks(2))
    assert len(rows) == (2 + 4) + infill + (2 + 4) + 6
    assert stats["samples_scored"] == len(rows) - 6 and stats["humaneval"] == metrics["humaneval"]
    assert stats["sandbox"]["missing"] == [] and stats["generation"]["benchmarks"]["humaneval"]["tasks"] == 2
    assert tracker.params["limit"] == 2 and "humaneval.sampled.pass_at_2" in tracker.metrics
    assert "heldout.perplexity" in tracker.metrics and not any("@" in k for k in tracker.metrics)


def test_same_inputs_and_seed_give_the_same_bytes(run, tiny_model_dir, pack_dir, tmp_path, tracker):
    out, _, _ = run
    again = str(tmp_path / "again")
    evaluate(CONFIG, tiny_model_dir, pack_dir, again, tracker)
    for name in (
        "samples/humaneval.jsonl",
        "samples/humaneval_infill.jsonl",
        "samples/stdio.jsonl",
        "samples/heldout_fim.jsonl",
        "results.jsonl",
        "metrics.json",
    ):
        assert open(os.path.join(out, name), "rb").read() == open(os.path.join(again, name), "rb").read(), name


def test_score_needs_generated_samples(tmp_path, tracker):
    with pytest.raises(InputError, match="run the generate step first"):
        score(EvalConfig(benchmarks=["humaneval"]), str(tmp_path), tracker)


def test_without_pack_the_heldout_metrics_are_skipped(tiny_model_dir, tmp_path, tracker):
    config = EvalConfig(benchmarks=["stdio", "heldout"], limit=1, max_new_tokens=8, threads=1)
    stats = generate(config, tiny_model_dir, "", str(tmp_path), tracker)
    assert stats["heldout"] == {"skipped": "no pack output given"}
    scored = score(config, str(tmp_path), tracker)
    assert "heldout" not in scored and scored["stdio"]["greedy"]["tasks"] == 1


def test_config_is_validated():
    with pytest.raises(InputError, match="benchmarks"):
        EvalConfig(benchmarks=["mbpp"]).ensure_valid()
    with pytest.raises(InputError, match="temperature"):
        EvalConfig(n_samples=4, temperature=0.0).ensure_valid()

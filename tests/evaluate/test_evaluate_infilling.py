"""HumanEval single-line infilling: tasks built from the canonical solutions, scored by execution."""

import json
import os

from codemill.evaluate import EvalConfig, score_samples
from codemill.evaluate.infilling import exact_match, first_line, load_tasks, program
from codemill.fim import psm_prompt, sentinels
from tests.conftest import FIM_TOKENS
from tests.evaluate.conftest import write_samples


def test_one_task_per_non_blank_canonical_line(problems):
    tasks = load_tasks()
    assert len(tasks) == 1033  # as upstream (InCoder / Bavarian et al.)
    expected = sum(1 for p in problems for line in p["canonical_solution"].splitlines() if line.strip())
    assert len(tasks) == expected
    by_problem = {p["task_id"]: p for p in problems}
    for task in tasks:
        problem = by_problem[task.task_id.rsplit("/L", 1)[0]]
        whole = task.prompt + task.reference + task.suffix
        assert whole.rstrip("\n") == (problem["prompt"] + problem["canonical_solution"]).rstrip("\n")
        assert task.reference.strip() and task.reference.endswith("\n")


def test_canonical_middles_pass_and_wrong_middles_fail(tmp_path, tracker):
    tasks = load_tasks(12)
    rows = [{"task_id": t.task_id, "completion": t.reference} for t in tasks]
    rows += [
        {"task_id": t.task_id, "completion": "    raise ValueError('not this line')", "mode": "wrong"} for t in tasks
    ]
    out = str(tmp_path / "o")
    stats = score_samples(
        EvalConfig(workers=2, limit=12, timeout=5.0),
        write_samples(tmp_path / "s.jsonl", rows),
        "humaneval_infill",
        out,
        tracker,
    )
    assert stats["humaneval_infill"]["given"]["pass@1"] == 1.0
    assert stats["humaneval_infill"]["given"]["exact_match"] == 1.0
    assert stats["humaneval_infill"]["wrong"]["pass@1"] == 0.0
    assert stats["humaneval_infill"]["wrong"]["exact_match"] == 0.0
    results = [json.loads(line) for line in open(os.path.join(out, "results.jsonl"))]
    assert len(results) == 2 * len(tasks)


def test_program_completes_the_function_around_the_middle():
    task = load_tasks(1)[1]
    assert program(task, task.reference.rstrip("\n")) == program(task, task.reference)
    assert first_line("    return x\n    more\n") == "    return x\n"
    assert exact_match("  return x  ", "return x\n") and not exact_match("return y", "return x")


def test_prompts_use_the_fim_sentinels():
    assert sentinels() == tuple(FIM_TOKENS)
    begin, hole, end = FIM_TOKENS
    assert psm_prompt("def f():\n", "\n    return 1\n") == f"{begin}def f():\n{hole}\n    return 1\n{end}"

"""stdin/stdout problems: both layouts load, and the judge accepts the references and rejects
wrong answers, runtime errors and timeouts."""

import json

import pytest

from codemill.evaluate import EvalConfig, score_samples
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.evaluate.stdio import SHIPPED_SOLUTIONS, cases, judge, load_tasks
from codemill.stage import InputError
from tests.evaluate.conftest import write_samples


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(timeout=2.0)) as sb:
        yield sb


@pytest.fixture(scope="module")
def shipped():
    tasks, quarantine = load_tasks()
    return {t.task_id: t for t in tasks}, quarantine


def test_shipped_problems_load_in_livecodebench_layout(shipped):
    tasks, quarantine = shipped
    assert len(tasks) == 13 and quarantine == []
    task = tasks["cm-stdio-001"]
    assert task.cases[0] == ("3 4\n", "7\n") and len(task.cases) == 3
    assert task.prompt.startswith("# Problem: Sum of two integers\n") and task.prompt.endswith("import sys\n")


def test_reference_solutions_score_one(tmp_path, tracker):
    stats = score_samples(EvalConfig(workers=2), SHIPPED_SOLUTIONS, "stdio", str(tmp_path / "o"), tracker)
    assert stats["stdio"]["given"]["pass@1"] == 1.0 and stats["stdio"]["given"]["tasks"] == 13


def test_judge_verdicts(sandbox, shipped):
    tasks = shipped[0]
    add, average, fib = tasks["cm-stdio-001"], tasks["cm-stdio-006"], tasks["cm-stdio-013"]
    assert judge(sandbox, add, "print(sum(map(int, input().split())))\n") == (True, "passed")
    assert judge(sandbox, add, "print(sum(map(int, input().split())) + 1)\n") == (
        False,
        "failed: wrong answer (test 1)",
    )
    assert judge(sandbox, add, "print(7)\n") == (False, "failed: wrong answer (test 2)")  # first case passes
    ok, detail = judge(sandbox, add, "raise ValueError('boom')\n")
    assert not ok and "exited with status 1" in detail and "ValueError: boom" in detail
    # An exact decimal in another form is accepted: 7.0 == 7, 2.50 == 2.5.
    floats = "d = sys.stdin.read().split()\nprint(sum(map(int, d[1:])) / int(d[0]))\n"
    assert judge(sandbox, average, floats) == (True, "passed")
    slow = "a, b = 0, 1\nfor _ in range(int(input())):\n    a, b = b, (a + b) % 1000000007\nprint(a)\n"
    assert judge(sandbox, fib, slow) == (False, "timed out (test 5)")
    assert judge(sandbox, add, "print(7)\nsys.exit(0)\n")[1] == "failed: wrong answer (test 2)"
    assert judge(sandbox, add, "print(sum(map(int, input().split())))\nsys.exit(3)\n")[0] is False


def test_rstar_layout_and_unusable_problems(tmp_path):
    rows = [
        {"question_id": "r1", "question": "Print the input twice.", "inputs": ["a\n"], "outputs": ["a\na\n"]},
        {"question_id": "r2", "question": "No tests."},
        {
            "question_id": "r3",
            "question_content": "Functional only.",
            "public_test_cases": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}]),
        },
        {
            "question_id": "r4",
            "question_content": "Pickled private tests only.",
            "private_test_cases": "eJzLSM3JyQcABiwCFQ==",
        },
        {"question_content": "no id", "inputs": ["1"], "outputs": ["1"]},
    ]
    path = write_samples(tmp_path / "p.jsonl", rows)
    tasks, quarantine = load_tasks(path)
    assert [t.task_id for t in tasks] == ["r1"] and tasks[0].cases == [("a\n", "a\na\n")]
    assert sorted(q["reason"] for q in quarantine) == [
        "no_statement",
        "no_stdin_tests",
        "no_stdin_tests",
        "no_stdin_tests",
    ]
    assert cases({"inputs": ["1", "2"], "outputs": ["1"]}) == []  # unequal lists: unusable
    with pytest.raises(InputError, match="no usable"):
        load_tasks(write_samples(tmp_path / "bad.jsonl", [rows[1]]))
    with pytest.raises(InputError, match="not found"):
        load_tasks(str(tmp_path / "missing.jsonl"))

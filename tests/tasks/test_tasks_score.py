"""The one scorer of mined tasks: known right and wrong answers of each kind, the answer
forms each kind accepts, and ``codemill eval --benchmark tasks`` on mined tasks."""

from __future__ import annotations

import json
import os

import pytest
from tasks_corpus import write_corpus
from test_tasks_stage import mine

from codemill.cli import main
from codemill.tasks.score import ParseError, Task, load_tasks, parse_completion, score

REFERENCE = (
    'LIMIT = 10\n\n\ndef clamp(x, low=0, high=LIMIT):\n    """Clamp x into [low, high]."""\n'
    "    return max(low, min(high, x))\n"
)
STUB = 'LIMIT = 10\n\n\ndef clamp(x, low=0, high=LIMIT):\n    """Clamp x into [low, high]."""\n'
CASES = (("-3, low=-2, high=2", "-2"), ("15", "10"), ("5, high=3", "3"))
GENERATE = Task("generate/clamp", "generate", "clamp", STUB, REFERENCE, CASES, "    return max(low, min(high, x))\n")
OUTPUT = Task("output/clamp", "output", "clamp", REFERENCE + "assert clamp(15) == ??\n", REFERENCE, (CASES[1],), "10")
INPUT = Task(
    "input/clamp", "input", "clamp", REFERENCE + "assert clamp(??) == 3\n", REFERENCE, (CASES[2],), "5, high=3"
)
FLOATS = Task("output/half", "output", "half", "", "def half(x):\n    return x / 2\n", (("4", "2.0"),), "2.0")
TASKS = [GENERATE, OUTPUT, INPUT, FLOATS]

RIGHT = [
    ("generate/clamp", "    return max(low, min(high, x))\n"),  # continues the prompt
    (
        "generate/clamp",
        "Here it is:\n```python\ndef clamp(x, low=0, high=LIMIT):\n    if x < low:\n        return low\n"
        "    return high if x > high else x\n```\n",
    ),  # a fenced block, LIMIT from the context
    ("output/clamp", "10"),
    ("output/clamp", "assert clamp(15) == 10"),
    ("output/clamp", "The call returns its upper bound.\n10"),
    ("input/clamp", "5, high=3"),
    ("input/clamp", "assert clamp(3) == 3"),  # other arguments with the same output pass too
    ("input/clamp", "clamp(7, high=3)"),
    ("output/half", "2.0"),
]
WRONG = [
    ("generate/clamp", "    return min(high, x)\n", "failed: wrong answer (case 1)", 2 / 3),
    ("generate/clamp", "    return max(low, x)\n", "failed: wrong answer (case 2)", 1 / 3),
    ("generate/clamp", "    return x\n", "failed: wrong answer (case 1)", 0.0),
    ("generate/clamp", "    while True:\n        pass\n", "timed out (case 1)", 0.0),
    ("generate/clamp", "    raise ValueError('no')\n", "failed: raises: ValueError: no (case 1)", 0.0),
    ("generate/clamp", "I do not know.", "parse error: no definition of clamp", 0.0),
    ("output/clamp", "11", "failed: wrong answer (case 1)", 0.0),
    ("output/clamp", "10.0", "failed: wrong answer (case 1)", 0.0),  # exact types: 10.0 is not 10
    ("output/clamp", "__import__('os').system('true')", "parse error: not a Python literal", 0.0),
    ("input/clamp", "4", "failed: wrong answer (case 1)", 0.0),
    ("input/clamp", "x", "parse error: not arguments of clamp", 0.0),
    ("input/clamp", "'a', 'b'", "failed: raises: TypeError", 0.0),
    ("output/half", "2", "failed: wrong answer (case 1)", 0.0),
]


def test_right_answers_pass():
    results = score(TASKS, RIGHT, workers=2, timeout=2.0)
    assert [(r.task_id, r.passed, r.fraction, r.detail) for r in results] == [
        (t, True, 1.0, "passed") for t, _ in RIGHT
    ]


def test_wrong_answers_fail_with_their_reason():
    results = score(TASKS, [(t, c) for t, c, _, _ in WRONG], workers=2, timeout=2.0)
    for result, (task_id, completion, detail, fraction) in zip(results, WRONG):
        assert (result.task_id, result.completion, result.passed) == (task_id, completion, False)
        assert result.detail.startswith(detail), (completion, result.detail)
        assert result.fraction == pytest.approx(fraction)


def test_unknown_task_fails():
    [result] = score(TASKS, [("output/nope", "1")], workers=1)
    assert not result.passed and "unknown task_id" in result.detail


def test_parse_completion_gives_what_is_checked():
    assert parse_completion(OUTPUT, "```python\nassert clamp(15) == [1, (2, 3)]\n```") == "[1, (2, 3)]"
    assert parse_completion(INPUT, "assert clamp(5, high=3) == 3") == "5, high=3"
    assert parse_completion(INPUT, "clamp(*[1])") == ParseError("not arguments of clamp made of Python literals")
    program = parse_completion(GENERATE, "```python\ndef clamp(x, low=0, high=10):\n    return x\n```")
    assert program.startswith("LIMIT = 10") and program.rstrip().endswith("return x")
    assert isinstance(parse_completion(GENERATE, "return"), ParseError)
    assert isinstance(parse_completion(OUTPUT, "[" * 100_000), ParseError)  # nesting past the parser's limit
    assert str(parse_completion(OUTPUT, "1" * 300_000)).startswith("the completion is longer than")


@pytest.fixture(scope="module")
def mined_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    mine(write_corpus(str(root / "corpus")), str(root / "tasks"))
    return str(root / "tasks")


def test_reference_answers_of_mined_tasks_pass(mined_tasks):
    tasks = load_tasks(mined_tasks)
    assert len(tasks) == 11  # 4 functions x 3 kinds, but double (a wrong doctest) has no generate task
    results = score(tasks, [(t.task_id, t.answer) for t in tasks], workers=2)
    assert all(r.passed for r in results), [r.detail for r in results if not r.passed]


def test_eval_cli_scores_a_samples_file(mined_tasks, tmp_path):
    tasks = load_tasks(mined_tasks)
    samples = tmp_path / "samples.jsonl"
    rows = [{"task_id": t.task_id, "completion": t.answer} for t in tasks]
    rows += [
        {"task_id": t.task_id, "completion": "    return None\n" if t.kind == "generate" else "None"} for t in tasks
    ]
    rows.append({"task_id": "output/missing-000", "completion": "1"})
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--samples",
                str(samples),
                "--benchmark",
                "tasks",
                "--tasks",
                mined_tasks,
                "--output",
                str(out),
                "--workers",
                "2",
                "--no-tracking",
            ]
        )
        == 0
    )
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["completion"]) for r in results] == [(r["task_id"], r["completion"]) for r in rows[:-1]]
    assert [r["passed"] for r in results] == [True] * len(tasks) + [False] * len(tasks)
    metrics = json.loads((out / "metrics.json").read_text())["tasks"]["given"]
    assert metrics["pass@1"] == 0.5 and metrics["tasks_total"] == len(tasks)
    assert set(metrics["by_kind"]) == {"generate", "output", "input"}
    assert os.path.exists(out / "report.html") and "unknown_task" in (out / "quarantine.jsonl").read_text()


def test_eval_tasks_needs_its_folder(tmp_path, capsys):
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"task_id": "x", "completion": "1"}\n')
    assert (
        main(
            [
                "eval",
                "--samples",
                str(samples),
                "--benchmark",
                "tasks",
                "--output",
                str(tmp_path / "o"),
                "--no-tracking",
            ]
        )
        == 2
    )
    assert "--tasks" in capsys.readouterr().err

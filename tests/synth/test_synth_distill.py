"""distill against the scripted teacher: rejection sampling keeps exactly the verified answers
(with their reasoning), the pass-rate range and mutual verification decide what they should."""

from __future__ import annotations

import json

import pyarrow as pa

from codemill import io
from codemill.cli import main
from codemill.evaluate import stdio
from codemill.tasks.kinds import OUTPUT_INSTRUCTION, TASK_SCHEMA
from tests.synth.scripted import Reply, ScriptedTeacher

FAST = [
    "--concurrency",
    "4",
    "--request-timeout-s",
    "5",
    "--max-retries",
    "1",
    "--backoff-s",
    "0.05",
    "--exec-timeout-s",
    "3",
    "--workers",
    "2",
    "--no-tracking",
    "--teacher-model",
    "scripted",
]
REFERENCE = 'def add_numbers(a, b):\n    """Return the sum of a and b."""\n    return a + b\n'
STUB = 'def add_numbers(a, b):\n    """Return the sum of a and b."""\n'


def _task(task_id, kind, prompt, tests, split="train", entry="add_numbers", reference=REFERENCE):
    return {
        "task_id": task_id,
        "kind": kind,
        "repo": "org/repo",
        "path": "m.py",
        "entry_point": entry,
        "prompt": prompt,
        "reference": reference,
        "tests": json.dumps(tests),
        "answer": "",
        "split": split,
        "language": "python",
    }


def write_tasks(folder) -> str:
    rows = [
        _task(
            "generate/add_numbers",
            "generate",
            STUB,
            [{"input": "1, 2", "output": "3"}, {"input": "-1, 1", "output": "0"}],
        ),
        _task(
            "output/add_numbers",
            "output",
            f"{REFERENCE}\n\n{OUTPUT_INSTRUCTION}\nassert add_numbers(2, 3) == ??\n",
            [{"input": "2, 3", "output": "5"}],
        ),
        _task(
            "generate/held_out",
            "generate",
            'def held_out(x):\n    """x."""\n',
            [{"input": "1", "output": "1"}],
            split="heldout",
            entry="held_out",
            reference="def held_out(x):\n    return x\n",
        ),
    ]
    io.write_parquet(pa.Table.from_pylist(rows, schema=TASK_SCHEMA), str(folder / "tasks" / "part-0.parquet"))
    return str(folder)


GENERATE_ANSWERS = {
    0: (
        "<think>\nAdd the two numbers.\n</think>\n\nHere it is:\n"
        "```python\ndef add_numbers(a, b):\n    return a + b\n```\n"
    ),
    1: "```python\ndef add_numbers(a, b):\n    return a - b\n```\n",  # wrong
    2: "The answer is to add them.",  # no code block
    3: Reply(content="```python\ndef add_numbers(a, b):\n    return b + a\n```\n", reasoning="Addition commutes."),
}
OUTPUT_ANSWERS = {
    0: "```python\nassert add_numbers(2, 3) == 5\n```",
    1: "<think>2 + 3</think>\n```python\n5\n```",
    2: "```python\n6\n```",
    3: "<think>this never ends",
}


def tasks_respond(content: str, seed: int, attempt: int):
    assert "held_out" not in content, "a heldout task was sent to the teacher"
    return (OUTPUT_ANSWERS if "== ??" in content else GENERATE_ANSWERS)[seed]


def test_distill_keeps_exactly_the_verified_answers_with_their_reasoning(tmp_path):
    tasks, out = write_tasks(tmp_path / "tasks-out"), str(tmp_path / "out")
    with ScriptedTeacher(tasks_respond) as teacher:
        assert (
            main(
                [
                    "synth",
                    "--mode",
                    "distill",
                    "--tasks",
                    tasks,
                    "--kinds",
                    "generate",
                    "output",
                    "--samples-per-task",
                    "4",
                    "--output",
                    out,
                    "--teacher-url",
                    teacher.url,
                    *FAST,
                ]
            )
            == 0
        )
        assert teacher.posts == 8
    stats = io.read_json(f"{out}/stats.json")
    data = io.read_parquet(f"{out}/data/shard-00000-of-00001.parquet").to_pylist()
    quarantine = io.read_parquet(f"{out}/quarantine/shard-00000-of-00001.parquet").to_pylist()
    assert sorted((r["task_id"], r["sample"]) for r in data) == [
        ("generate/add_numbers", 0),
        ("generate/add_numbers", 3),
        ("output/add_numbers", 0),
        ("output/add_numbers", 1),
    ]
    answers = {(r["task_id"], r["sample"]): r["messages"][1]["content"] for r in data}
    assert answers[("generate/add_numbers", 0)] == GENERATE_ANSWERS[0]  # reasoning kept as written
    assert answers[("generate/add_numbers", 3)].startswith("<think>\nAddition commutes.\n</think>")
    assert all(r["source"] == "distill:tasks" and r["teacher_model"] == "scripted" for r in data)
    assert "def add_numbers(a, b):" in data[0]["messages"][0]["content"]
    assert json.loads(next(r["tests"] for r in data if r["kind"] == "generate"))[0] == {"input": "1, 2", "output": "3"}
    assert sorted((q["task_id"], q["sample"], q["reason"]) for q in quarantine) == [
        ("generate/add_numbers", 1, "failed_tests"),
        ("generate/add_numbers", 2, "unparseable"),
        ("output/add_numbers", 2, "failed_tests"),
        ("output/add_numbers", 3, "unparseable"),
    ]
    assert stats["requested"] == stats["answered"] == 8 and stats["kept"] == 4 and stats["invariant_ok"]
    assert sorted(stats["pass_rates"]) == [["generate/add_numbers", 2, 4], ["output/add_numbers", 2, 4]]
    assert stats["tasks"] == {"file": tasks, "rows": 3, "heldout_or_other_kinds": 1, "used": 2}


SUM_OK = "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)  # variant {n}\n"
REVERSE_OK = "import sys\nprint(' '.join(reversed(sys.stdin.readline().split())))\n"


def problems_respond(content: str, seed: int, attempt: int):
    if "two integers a and b" in content:  # labelled; every answer right -> pass rate 1.0
        return f"```python\n{SUM_OK.format(n=seed)}```"
    if "reverse order" in content:  # labelled; one right answer of four -> 0.25
        return f"```python\n{REVERSE_OK}```" if seed == 0 else "```python\nprint(input())\n```"
    if "MUTUAL-SUM" in content:  # unlabelled: three agree, one disagrees, one has no code
        if seed < 3:
            return f"<think>sum</think>\n```python\n{SUM_OK.format(n=seed)}```"
        return "```python\na, b = map(int, input().split())\nprint(a - b)\n```" if seed == 3 else "no code"
    if "MUTUAL-CHAOS" in content:  # unlabelled: every answer prints something else
        return f"```python\nprint({seed})\n```"
    raise AssertionError(content)


def write_problems(path) -> str:
    rows = [json.loads(line) for line in io.read_text(stdio.SHIPPED_PROBLEMS).splitlines()[:2]]
    rows += [
        {
            "question_id": "mv-sum",
            "question": "MUTUAL-SUM: print the sum of the two integers.",
            "inputs": ["1 2\n", "5 5\n"],
        },
        {"question_id": "mv-chaos", "question": "MUTUAL-CHAOS: print anything.", "inputs": ["1\n"]},
    ]
    io.write_text(str(path), "".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_pass_rate_range_and_mutual_verification(tmp_path):
    problems, out = write_problems(tmp_path / "problems.jsonl"), str(tmp_path / "out")
    with ScriptedTeacher(problems_respond) as teacher:
        assert (
            main(
                [
                    "synth",
                    "--mode",
                    "distill",
                    "--problems",
                    problems,
                    "--samples-per-task",
                    "4",
                    "--mutual-verification",
                    "5",
                    "--agreement",
                    "0.6",
                    "--pass-rate-range",
                    "0.1",
                    "0.6",
                    "--output",
                    out,
                    "--teacher-url",
                    teacher.url,
                    *FAST,
                ]
            )
            == 0
        )
    stats = io.read_json(f"{out}/stats.json")
    data = io.read_parquet(f"{out}/data/shard-00000-of-00001.parquet").to_pylist()
    quarantine = io.read_parquet(f"{out}/quarantine/shard-00000-of-00001.parquet").to_pylist()
    assert sorted((r["task_id"], r["sample"]) for r in data) == [
        ("cm-stdio-002", 0),
        ("mv-sum", 0),
        ("mv-sum", 1),
        ("mv-sum", 2),
    ]
    by_task: dict = {}
    for q in quarantine:
        by_task.setdefault(q["task_id"], []).append(q["reason"])
    assert by_task == {
        "cm-stdio-001": ["pass_rate"] * 4,
        "cm-stdio-002": ["failed_tests"] * 3,
        "mv-sum": ["failed_tests", "unparseable"],
        "mv-chaos": ["no_agreement"] * 5,
    }
    mutual = next(r for r in data if r["task_id"] == "mv-sum")
    assert json.loads(mutual["tests"]) == [{"input": "1 2\n", "output": "3"}, {"input": "5 5\n", "output": "10"}]
    assert mutual["messages"][1]["content"].startswith("<think>sum</think>") and mutual["source"] == "distill:mutual"
    assert stats["agreement_histogram"] == {"0.2-0.3": 1, "0.6-0.7": 2}
    assert stats["mutual"]["inputs_labelled"] == 2 and stats["mutual"]["problems"] == 2
    assert stats["requested"] == stats["answered"] == 4 + 4 + 5 + 5 == stats["kept"] + stats["quarantined"]
    assert stats["tasks_in_pass_rate_range"] == 2  # cm-stdio-002 (0.25) and mv-sum (0.6)
    report = io.read_text(f"{out}/report.md")
    assert "## agreement histogram" in report and "| 0.6-0.7 | 2 |" in report

"""stdin/stdout problems (LiveCodeBench / rStar-Coder layout), run in the sandbox and judged
line by line with numbers compared exactly (``metric.stdout_matches``).

Accepted rows (JSON lines):

- LiveCodeBench: ``question_id``, ``question_title``, ``question_content``,
  ``public_test_cases`` / ``private_test_cases`` (a JSON string or list of
  ``{"input", "output", "testtype": "stdin"}``; "functional" cases are skipped; the
  pickled private cases of the official release are not read: unpickling runs code);
- rStar-Coder: ``question_id``, ``question``, ``inputs``, ``outputs`` (parallel lists).

A problem with no readable stdin case is quarantined with a reason. The set shipped in
``data/stdio_problems.jsonl`` was written for codemill (reference solutions in
``data/stdio_solutions.jsonl``) to test the judge; point ``--stdio-problems`` at a real
benchmark file for model comparisons.
"""

from __future__ import annotations

import json
import os

from codemill import io
from codemill.evaluate.data import Task, read_jsonl
from codemill.evaluate.metric import stdout_matches
from codemill.evaluate.sandbox import Sandbox
from codemill.stage import InputError

NAME = "stdio"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SHIPPED_PROBLEMS = os.path.join(DATA, "stdio_problems.jsonl")
SHIPPED_SOLUTIONS = os.path.join(DATA, "stdio_solutions.jsonl")
STOP = ("\n# Problem", "\n# End of solution")


def prompt(title: str, statement: str) -> str:
    """A base model's prompt: the statement as comments, then the program's first line."""
    lines = [f"# Problem: {title}" if title else "# Problem", "#"]
    lines += ["# " + line if line.strip() else "#" for line in statement.strip().splitlines()]
    lines += ["#", "# A complete Python 3 program: read standard input, write standard output.", "import sys", ""]
    return "\n".join(lines)


def _case_list(value) -> list[dict]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            return []
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def cases(row: dict) -> list[tuple[str, str]]:
    """The stdin test cases of a problem row, in either layout."""
    if "inputs" in row or "outputs" in row:
        ins, outs = row.get("inputs") or [], row.get("outputs") or []
        return [(str(i), str(o)) for i, o in zip(ins, outs)] if len(ins) == len(outs) else []
    found = _case_list(row.get("public_test_cases", [])) + _case_list(row.get("private_test_cases", []))
    return [
        (str(c["input"]), str(c["output"]))
        for c in found
        if c.get("testtype", "stdin") == "stdin" and "input" in c and "output" in c
    ]


def load_tasks(url: str = "", limit: int = 0) -> tuple[list[Task], list[dict]]:
    """Problems as Tasks (file order, first ``limit``), and quarantine rows for unusable ones."""
    url = url or SHIPPED_PROBLEMS
    if not io.exists(url):
        raise InputError(f"{url}: stdio problems file not found")
    rows, quarantine = read_jsonl(url)
    tasks, bad = tasks_from_rows(rows, url)
    quarantine += bad
    if not tasks:
        raise InputError(f"{url}: no usable stdin/stdout problems ({len(quarantine)} rows quarantined)")
    return (tasks[:limit] if limit else tasks), quarantine


def tasks_from_rows(rows: list[dict], url: str) -> tuple[list[Task], list[dict]]:
    """Problem rows (either layout) as Tasks, and quarantine rows naming ``url``."""
    tasks, quarantine = [], []
    for row in rows:
        task_id = row.get("question_id") or row.get("task_id")
        statement = row.get("question_content") or row.get("question") or row.get("prompt")
        found = cases(row)
        if not task_id or not isinstance(statement, str):
            quarantine.append(
                {
                    "reason": "no_statement",
                    "detail": "needs question_id and question(_content)",
                    "source": url,
                    "raw": json.dumps(row)[:2000],
                }
            )
        elif not found:
            quarantine.append(
                {
                    "reason": "no_stdin_tests",
                    "detail": f"{task_id}: no readable stdin test case",
                    "source": url,
                    "raw": json.dumps(row)[:2000],
                }
            )
        else:
            text = prompt(str(row.get("question_title") or row.get("title") or ""), statement)
            tasks.append(Task(NAME, str(task_id), text, cases=found))
    return tasks, quarantine


def judge(sandbox: Sandbox, task: Task, completion: str) -> tuple[bool, str]:
    """Run the program on every case in order; the first failing case decides the verdict."""
    program = task.prompt + completion
    for number, (given, expected) in enumerate(task.cases, start=1):
        run = sandbox.run(program, mode="stdio", stdin=given, stdout_bytes=2 * len(expected) + 1024)
        if not run.passed:
            return False, f"{run.result} (test {number})"
        if run.truncated or not stdout_matches(run.stdout, expected):
            return False, f"failed: wrong answer (test {number})"
    return True, "passed"

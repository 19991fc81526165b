"""HumanEval single-line infilling, built from the canonical solutions and scored by execution.

Each non-blank line of a canonical solution is the middle of one task: the prompt plus
the earlier lines are the prefix, the later lines the suffix (InCoder / Bavarian et al.;
1,033 tasks upstream). The model sees them in PSM order with its FIM sentinels; its
middle is cut to one line and the completed function runs against the problem's tests.
"""

from __future__ import annotations

from codemill.evaluate import humaneval
from codemill.evaluate.data import Task

NAME = "humaneval_infill"


def load_tasks(limit: int = 0) -> list[Task]:
    tasks = []
    for problem in humaneval.load_tasks(limit):
        lines = problem.reference.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            middle = line if line.endswith("\n") else line + "\n"
            tasks.append(
                Task(
                    NAME,
                    f"{problem.task_id}/L{i}",
                    problem.prompt + "".join(lines[:i]),
                    suffix="".join(lines[i + 1 :]),
                    reference=middle,
                    test=problem.test,
                    entry_point=problem.entry_point,
                )
            )
    return tasks


def first_line(text: str) -> str:
    """A generated middle cut to its first line (the task masks exactly one line)."""
    return text.split("\n", 1)[0] + "\n"


def source(task: Task, completion: str) -> str:
    """The completed function: prefix + the one-line middle + suffix."""
    middle = completion if completion.endswith("\n") else completion + "\n"
    return f"{task.prompt}{middle}{task.suffix}\n"


def program(task: Task, completion: str) -> str:
    middle = completion if completion.endswith("\n") else completion + "\n"
    return f"{task.prompt}{middle}{task.suffix}\n{task.test}\ncheck({task.entry_point})\n"


def exact_match(completion: str, reference: str) -> bool:
    """SantaCoder-style: equal after stripping surrounding whitespace."""
    return completion.strip() == reference.strip()

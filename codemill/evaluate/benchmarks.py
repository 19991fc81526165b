"""The code benchmarks behind one interface: load tasks, build prompts, judge a completion."""

from __future__ import annotations

from codemill.evaluate import humaneval, infilling, stdio
from codemill.evaluate.config import EvalConfig
from codemill.evaluate.data import Task
from codemill.evaluate.sandbox import Sandbox

INFILL_MAX_NEW_TOKENS = 128  # one line of code; more only wastes generation steps


def load_tasks(name: str, config: EvalConfig) -> tuple[list[Task], list[dict]]:
    """Tasks of a benchmark in order, and quarantine rows for problems that cannot be used."""
    if name == humaneval.NAME:
        return humaneval.load_tasks(config.limit), []
    if name == infilling.NAME:
        return infilling.load_tasks(config.limit), []
    if name == stdio.NAME:
        return stdio.load_tasks(config.stdio_problems, config.limit)
    raise ValueError(f"not a code benchmark: {name}")


def stop_sequences(name: str) -> tuple[str, ...]:
    return {humaneval.NAME: humaneval.STOP, stdio.NAME: stdio.STOP}.get(name, ())


def judge(sandbox: Sandbox, task: Task, completion: str) -> tuple[bool, str]:
    """Execute a completion against its task's tests: (passed, result detail)."""
    if task.benchmark == stdio.NAME:
        return stdio.judge(sandbox, task, completion)
    if task.benchmark == humaneval.NAME:
        return humaneval.verify(sandbox, task, f"{task.prompt}{completion}\n")
    return humaneval.verify(sandbox, task, infilling.source(task, completion))

"""One scoring request, the same in-process and behind ``codemill sandbox serve``.

A request is ``{"benchmark": "humaneval" | "humaneval_infill" | "stdio" | "tasks" |
"program" | "stdio_outputs", "samples": [{"task_id", "completion"}, ...], "tasks": [task
rows] (for "tasks"), "problems": [problem rows] (for "stdio"; default: the set shipped with
codemill)}``; the answer is one row per sample, in order, with the fields of
``results.jsonl`` (``benchmark, task_id, mode, index, completion, passed, result``;
``index`` counts the samples of a task). "tasks" rows also carry ``passed_cases`` and
``total`` (test cases), and so do "stdio" rows when the request sets ``"all_cases": true``.
"program" and "stdio_outputs" (whole programs, for synth) are described in ``programs.py``;
a "stdio_outputs" row has ``outputs`` instead of ``passed`` and ``result``.
A malformed request raises :class:`BadRequest` naming what is wrong.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from codemill.evaluate.sandbox import Sandbox, run_parallel
from codemill.verify import programs

BENCHMARKS = ("humaneval", "humaneval_infill", "stdio", "tasks", "program", "stdio_outputs")
MAX_SAMPLES = 10_000


class BadRequest(ValueError):
    """The request cannot be scored; ``str`` says why (the HTTP server answers 400)."""


@lru_cache(maxsize=2)
def _benchmark_tasks(name: str) -> dict:
    from codemill.evaluate import humaneval, infilling

    tasks = humaneval.load_tasks() if name == "humaneval" else infilling.load_tasks()
    return {t.task_id: t for t in tasks}


def _rows(body: dict, key: str) -> list[dict]:
    rows = body.get(key)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BadRequest(f'"{key}" must be a list of objects')
    return rows


def validate(body: object) -> tuple[str, list[tuple[str, str]]]:
    """The benchmark and ``(task_id, completion)`` pairs of a request, or BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    benchmark = body.get("benchmark")
    if benchmark not in BENCHMARKS:
        raise BadRequest(f'"benchmark" must be one of {", ".join(BENCHMARKS)}, not {benchmark!r}')
    samples = _rows(body, "samples")
    if len(samples) > MAX_SAMPLES:
        raise BadRequest(f"{len(samples)} samples; at most {MAX_SAMPLES} per request")
    pairs = []
    for number, row in enumerate(samples):
        task_id, completion = row.get("task_id"), row.get("completion")
        if not isinstance(task_id, str) or not isinstance(completion, str):
            raise BadRequest(f"samples[{number}]: needs a string task_id and a string completion")
        pairs.append((task_id, completion))
    return benchmark, pairs


def score_request(body: object, sandbox: Sandbox, workers: int, timeout: float) -> list[dict]:
    """Score a request (see the module docstring) in ``sandbox`` with ``workers`` threads."""
    benchmark, pairs = validate(body)
    if benchmark == "stdio_outputs":
        fields = programs.stdio_outputs(body, pairs, sandbox, workers, BadRequest)
    else:
        if benchmark == "tasks":
            verdicts = _score_tasks(_rows(body, "tasks"), pairs, sandbox, workers, timeout)
        elif benchmark == "program":
            verdicts = programs.score_programs(pairs, sandbox, workers)
        else:
            verdicts = _score_benchmark(benchmark, body, pairs, sandbox, workers)
        fields = [{"passed": passed, "result": result, **extra} for passed, result, extra in verdicts]
    counts: dict[str, int] = {}
    rows = []
    for (task_id, completion), found in zip(pairs, fields):
        index = counts.get(task_id, 0)
        counts[task_id] = index + 1
        rows.append(
            {
                "benchmark": benchmark,
                "task_id": task_id,
                "mode": "given",
                "index": index,
                "completion": completion,
                **found,
            }
        )
    return rows


def _score_benchmark(benchmark: str, body: dict, pairs, sandbox: Sandbox, workers: int) -> list[tuple[bool, str, dict]]:
    from codemill.evaluate import benchmarks, stdio

    if benchmark == "stdio":
        rows = _rows(body, "problems") if "problems" in body else None
        tasks, _ = stdio.tasks_from_rows(rows, "request") if rows is not None else stdio.load_tasks()
        by_id = {t.task_id: t for t in tasks}
    else:
        by_id = _benchmark_tasks(benchmark)
    unknown = sorted({task_id for task_id, _ in pairs if task_id not in by_id})
    if unknown:
        raise BadRequest(f"{len(unknown)} task ids are not in {benchmark}: {', '.join(unknown[:5])}")
    if benchmark == "stdio" and body.get("all_cases") is True:
        return run_parallel(
            lambda pair: programs.judge_all_cases(sandbox, by_id[pair[0]], pair[1]), pairs, workers, benchmark
        )
    return run_parallel(
        lambda pair: (*benchmarks.judge(sandbox, by_id[pair[0]], pair[1]), {}), pairs, workers, benchmark
    )


def _score_tasks(
    rows: list[dict], pairs, sandbox: Sandbox, workers: int, timeout: float
) -> list[tuple[bool, str, dict]]:
    from codemill.tasks.score import Task, score

    try:
        tasks = [Task.from_row(row) for row in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise BadRequest(f'"tasks": a row is not a task row: {e}') from None
    for task in tasks:  # a prompt the scorer cannot parse is the caller's error, not the service's
        if task.kind == "generate":
            try:
                ast.parse(task.prompt)
            except (SyntaxError, ValueError) as e:
                raise BadRequest(f'"tasks": task {task.task_id}: its prompt is not valid Python ({e})') from None
    known = {t.task_id for t in tasks}
    unknown = sorted({task_id for task_id, _ in pairs if task_id not in known})
    if unknown:
        raise BadRequest(f"{len(unknown)} task ids are not in the request's tasks: {', '.join(unknown[:5])}")
    totals = {t.task_id: len(t.tests) if t.kind == "generate" else 1 for t in tasks}
    # fraction is passed_cases / total for every kind (codemill.tasks.score), so the counts come back exactly
    return [
        (r.passed, r.detail, {"passed_cases": round(r.fraction * totals[r.task_id]), "total": totals[r.task_id]})
        for r in score(tasks, list(pairs), workers=workers, sandbox=sandbox, timeout=timeout)
    ]

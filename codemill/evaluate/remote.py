"""Scoring on the sandbox service (``--sandbox-url``): the same verdicts, executed elsewhere.

The samples go to ``codemill sandbox serve`` in batches of ``BATCH`` (a request per
benchmark and batch, with the stdio problem rows or the mined task rows inline); the
service answers rows with the ``passed`` and ``result`` fields this stage writes to
``results.jsonl`` (and, for mined tasks, ``passed_cases``/``total``: :func:`task_results`).
"""

from __future__ import annotations

import os

from codemill.evaluate import stdio
from codemill.evaluate.config import EvalConfig
from codemill.evaluate.data import read_jsonl
from codemill.stage import InputError
from codemill.verify import client

BATCH = 256


def isolation(url: str) -> dict:
    found = client.isolation(url)
    found.setdefault("layers", {})
    found.setdefault("missing", [])
    found.setdefault("evaluator_root", None)
    found.setdefault("python", "")
    return found


def _api_key(config: EvalConfig) -> str:
    api_key = os.environ.get(config.sandbox_api_key_env, "")
    if not api_key:
        raise InputError(f"--sandbox-url {config.sandbox_url}: ${config.sandbox_api_key_env} holds no API key")
    return api_key


def task_results(config: EvalConfig, tasks: list, samples: list[tuple[str, str]]) -> list:
    """:func:`codemill.tasks.score.score`'s Results for ``(task_id, completion)`` pairs of known
    tasks, from "tasks" requests (the task rows inline, those of each batch only); ``fraction``
    is the rows' ``passed_cases / total``, which is how the scorer computes it."""
    from codemill.tasks.score import Result

    api_key = _api_key(config)
    by_id = {t.task_id: t for t in tasks}
    out = []
    for start in range(0, len(samples), BATCH):
        batch = samples[start : start + BATCH]
        rows = client.score(
            "tasks",
            [{"task_id": t, "completion": c} for t, c in batch],
            url=config.sandbox_url,
            api_key=api_key,
            tasks=[client.task_row(by_id[t]) for t in sorted({t for t, _ in batch})],
        )
        for (task_id, completion), row in zip(batch, rows):
            if "passed_cases" not in row or "total" not in row:
                raise client.SandboxServiceError(
                    f"{config.sandbox_url}: the service reports no passed_cases/total "
                    f"for tasks; it is older than this codemill"
                )
            out.append(
                Result(
                    task_id,
                    completion,
                    bool(row["passed"]),
                    row["passed_cases"] / max(row["total"], 1),
                    str(row["result"]),
                    by_id[task_id].kind,
                )
            )
    return out


def verdicts(config: EvalConfig, work: list) -> list[tuple[bool, str]]:
    """(passed, result) per (task, sample) pair, in order."""
    api_key = _api_key(config)
    problems = (
        read_jsonl(config.stdio_problems or stdio.SHIPPED_PROBLEMS)[0]
        if any(task.benchmark == stdio.NAME for task, _ in work)
        else None
    )
    out: list[tuple[bool, str] | None] = [None] * len(work)
    by_benchmark: dict[str, list[int]] = {}
    for i, (task, _) in enumerate(work):
        by_benchmark.setdefault(task.benchmark, []).append(i)
    for benchmark, positions in by_benchmark.items():
        for start in range(0, len(positions), BATCH):
            batch = positions[start : start + BATCH]
            samples = [{"task_id": work[i][0].task_id, "completion": work[i][1].completion} for i in batch]
            rows = client.score(
                benchmark,
                samples,
                url=config.sandbox_url,
                api_key=api_key,
                problems=problems if benchmark == stdio.NAME else None,
            )
            for i, row in zip(batch, rows):
                out[i] = (bool(row["passed"]), str(row["result"]))
    return out  # type: ignore[return-value]

"""Scoring on the sandbox service (``--sandbox-url``): the same verdicts, executed elsewhere.

The samples go to ``codemill sandbox serve`` in batches of ``BATCH`` (a request per
benchmark and batch, with the stdio problem rows inline); the service answers rows with
the ``passed`` and ``result`` fields this stage writes to ``results.jsonl``.
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


def verdicts(config: EvalConfig, work: list) -> list[tuple[bool, str]]:
    """(passed, result) per (task, sample) pair, in order."""
    api_key = os.environ.get(config.sandbox_api_key_env, "")
    if not api_key:
        raise InputError(f"--sandbox-url {config.sandbox_url}: ${config.sandbox_api_key_env} holds no API key")
    problems = read_jsonl(config.stdio_problems or stdio.SHIPPED_PROBLEMS)[0] if any(
        task.benchmark == stdio.NAME for task, _ in work) else None
    out: list[tuple[bool, str] | None] = [None] * len(work)
    by_benchmark: dict[str, list[int]] = {}
    for i, (task, _) in enumerate(work):
        by_benchmark.setdefault(task.benchmark, []).append(i)
    for benchmark, positions in by_benchmark.items():
        for start in range(0, len(positions), BATCH):
            batch = positions[start:start + BATCH]
            samples = [{"task_id": work[i][0].task_id, "completion": work[i][1].completion} for i in batch]
            rows = client.score(benchmark, samples, url=config.sandbox_url, api_key=api_key,
                                problems=problems if benchmark == stdio.NAME else None)
            for i, row in zip(batch, rows):
                out[i] = (bool(row["passed"]), str(row["result"]))
    return out  # type: ignore[return-value]

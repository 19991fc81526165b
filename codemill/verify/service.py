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
"calls" (reference functions run for their values, for the tasks stage) is
:func:`codemill.verify.run_calls` over HTTP: each sample's ``completion`` is a source, with
its ``entry_point`` and ``inputs`` (argument source texts); the request may set
``hash_seed`` (the sandbox's PYTHONHASHSEED, default "0"), ``timeout`` (whole run, at most
the service's), ``call_timeout``, ``memory_mb`` (at most the service's) and
``result_bytes``, as ``run_calls`` takes them. Its row has ``calls`` instead of ``passed``
and ``result``: one ``{"status", "value", "detail"}`` per input, ``value`` the strict wire
text (``codemill.verify.strict.encode``) of the returned value when ``status`` is "ok",
else null. A seed other than the service sandbox's gets a sandbox of its own, started on
first use with the same limits and isolation (:class:`SeedSandboxes`).
A malformed request raises :class:`BadRequest` naming what is wrong.
"""

from __future__ import annotations

import ast
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from codemill.evaluate.sandbox import Sandbox, run_parallel
from codemill.verify import programs
from codemill.verify.calls import RESULT_BYTES, run_calls
from codemill.verify.strict import MAX_BYTES, encode

BENCHMARKS = ("humaneval", "humaneval_infill", "stdio", "tasks", "program", "stdio_outputs", "calls")
MAX_SAMPLES = 10_000
MAX_INPUTS = 1_000  # "calls": inputs of one sample
MAX_CALLS = 100_000  # "calls": inputs of all samples of a request
MAX_INPUT_CHARS = 1 << 16
MAX_HASH_SEED = 4294967295  # the largest PYTHONHASHSEED Python accepts
SEED_SANDBOXES = 8  # idle sandboxes of other hash seeds kept started


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


def score_request(
    body: object, sandbox: Sandbox, workers: int, timeout: float, seeds: SeedSandboxes | None = None
) -> list[dict]:
    """Score a request (see the module docstring) in ``sandbox`` with ``workers`` threads;
    ``seeds`` (the server's) keeps the sandboxes of other hash seeds between requests."""
    benchmark, pairs = validate(body)
    if benchmark == "stdio_outputs":
        fields = programs.stdio_outputs(body, pairs, sandbox, workers, BadRequest)
    elif benchmark == "calls":
        fields = run_call_samples(body, pairs, seeds or SeedSandboxes(sandbox, keep=0), workers, timeout)
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


# ---------------------------------------------------------------------------- "calls"


class SeedSandboxes:
    """``base`` (the service's sandbox) and one more per other PYTHONHASHSEED that "calls"
    requests ask for, started on first use with ``base``'s limits, interpreter and isolation
    (PYTHONHASHSEED is fixed when a sandbox starts). At most ``keep`` are kept started; past
    that the least recently used idle one is closed."""

    def __init__(self, base: Sandbox, keep: int = SEED_SANDBOXES):
        self.base, self.keep = base, keep
        self._lock = threading.Lock()
        self._boxes: dict[str, list] = {}  # hash seed -> [sandbox, requests using it]; least recent first

    @contextmanager
    def get(self, hash_seed: str) -> Iterator[Sandbox]:
        if hash_seed == self.base.hash_seed:
            yield self.base
            return
        with self._lock:  # one start at a time: a start is a probe run, well under a second
            entry = self._boxes.pop(hash_seed, None)
            if entry is None:
                box = Sandbox(**self._settings(), hash_seed=hash_seed)
                box.start()
                entry = [box, 0]
            entry[1] += 1
            self._boxes[hash_seed] = entry
        try:
            yield entry[0]
        finally:
            with self._lock:
                entry[1] -= 1
                idle = [seed for seed, (_, users) in self._boxes.items() if users == 0]
                closing = [self._boxes.pop(seed)[0] for seed in idle[: max(0, len(self._boxes) - self.keep)]]
            for box in closing:
                box.close()

    def _settings(self) -> dict:
        b = self.base
        settings = dict(limits=b.limits, python=b.python, require_isolation=b.require_isolation, uid=b.uid, gid=b.gid)
        if hasattr(b, "slots"):  # samples at once in one fork server, where the sandbox has that setting
            settings["slots"] = b.slots
        return settings

    def started(self) -> list[str]:
        """The hash seeds whose own sandboxes are started now, least recently used first."""
        with self._lock:
            return list(self._boxes)

    def close(self) -> None:
        with self._lock:
            boxes, self._boxes = [box for box, _ in self._boxes.values()], {}
        for box in boxes:
            box.close()


def _number(body: dict, key: str, default, low: float, high: float, integer: bool = False):
    value = body.get(key, default)
    kinds = (int,) if integer else (int, float)
    if (
        not isinstance(value, kinds)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
        or (value == low and not integer)  # a limit of 0 seconds runs nothing
    ):
        span = f"{low}..{high}" if integer else f"in ({low}, {high}]"
        raise BadRequest(f'"{key}" must be {"an integer" if integer else "a number"} {span}, not {value!r}')
    return value


def call_settings(body: dict, sandbox: Sandbox, timeout: float) -> dict:
    """``run_calls``'s settings from a "calls" request, each checked against the service's limits."""
    seed = body.get("hash_seed", sandbox.hash_seed)
    if not (isinstance(seed, str) and seed.isdigit() and seed.isascii() and int(seed) <= MAX_HASH_SEED):
        raise BadRequest(f'"hash_seed" must be a string of digits, 0..{MAX_HASH_SEED}, not {seed!r}')
    limit = _number(body, "timeout", timeout, 0, timeout)
    return {
        "hash_seed": str(int(seed)),
        "timeout": limit,
        "call_timeout": _number(body, "call_timeout", limit, 0, limit),
        "memory_mb": _number(body, "memory_mb", sandbox.limits.memory_mb, 16, sandbox.limits.memory_mb, True),
        "result_bytes": _number(body, "result_bytes", RESULT_BYTES, 1, MAX_BYTES, True),
    }


def call_jobs(body: dict, pairs) -> list[tuple[str, str, list[str]]]:
    """(source, entry point, inputs) per sample of a "calls" request."""
    jobs, total = [], 0
    for number, ((_, source), row) in enumerate(zip(pairs, body["samples"])):
        entry_point, inputs = row.get("entry_point"), row.get("inputs")
        if not isinstance(entry_point, str) or not entry_point.isidentifier():
            raise BadRequest(f"samples[{number}]: needs an entry_point that is a Python identifier")
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise BadRequest(f"samples[{number}]: needs inputs, a list of argument source strings")
        if len(inputs) > MAX_INPUTS or any(len(i) > MAX_INPUT_CHARS for i in inputs):
            raise BadRequest(
                f"samples[{number}]: at most {MAX_INPUTS} inputs of at most {MAX_INPUT_CHARS} characters each"
            )
        total += len(inputs)
        jobs.append((source, entry_point, inputs))
    if total > MAX_CALLS:
        raise BadRequest(f"{total} calls (inputs of all samples); at most {MAX_CALLS} per request")
    return jobs


def run_call_samples(body: dict, pairs, seeds: SeedSandboxes, workers: int, timeout: float) -> list[dict]:
    """One ``{"calls": [...]}`` per sample: what ``run_calls`` returns, each value as wire text."""
    settings = call_settings(body, seeds.base, timeout)
    jobs = call_jobs(body, pairs)
    seed = settings.pop("hash_seed")
    with seeds.get(seed) as box:
        found = run_parallel(
            lambda job: run_calls(job[0], job[1], job[2], sandbox=box, **settings), jobs, workers, "calls"
        )
    return [
        {
            "calls": [
                {
                    "status": r.status,
                    "value": encode(r.value, max_bytes=1 << 62) if r.status == "ok" else None,
                    "detail": r.detail,
                }
                for r in results
            ]
        }
        for results in found
    ]

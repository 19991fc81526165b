"""Call mode: run a source once in the sandbox, call its entry point on each input, and
judge the returned values in this (trusted) process. The contract is in ``__init__.py``."""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
from dataclasses import dataclass, field

from codemill.evaluate.sandbox import Execution, Sandbox
from codemill.verify.strict import Unserializable, decode, encode, strict_equal

STATUSES = ("ok", "raises", "timeout", "unserializable", "crashed", "bad_input", "no_entry_point")
RESULT_BYTES = 256 << 10  # encoded return value of one call

_default: dict[str, Sandbox] = {}
_default_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call: ``status`` (one of STATUSES), the decoded return value (only when "ok"), a detail."""

    status: str
    value: object = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """``passed``: every case returned its expected value; ``detail`` is results.jsonl's ``result``."""

    passed: bool
    passed_cases: int
    total: int
    detail: str
    results: list[CallResult] = field(default_factory=list)


def default_sandbox(hash_seed: str = "0") -> Sandbox:
    """A sandbox per hash seed, started on first use and closed when the process exits.
    It refuses to run half-isolated inside a KFP pod (as ``EvalConfig.require_isolation``)."""
    with _default_lock:
        sandbox = _default.get(str(hash_seed))
        if sandbox is None:
            sandbox = Sandbox(require_isolation=os.environ.get("_KFP_RUNTIME") == "true", hash_seed=str(hash_seed))
            sandbox.start()
            _default[str(hash_seed)] = sandbox
            if len(_default) == 1:
                atexit.register(_close_defaults)
        return sandbox


def _close_defaults() -> None:
    with _default_lock:
        for sandbox in _default.values():
            sandbox.close()
        _default.clear()


def run_calls(
    source: str,
    entry_point: str,
    inputs: list[str],
    timeout: float = 3.0,
    *,
    sandbox: Sandbox | None = None,
    hash_seed: str | None = None,
    call_timeout: float | None = None,
    memory_mb: int | None = None,
    result_bytes: int = RESULT_BYTES,
) -> list[CallResult]:
    """``entry_point(<input>)`` for each input (argument source text), in one sandboxed run
    of ``source`` limited to ``timeout`` wall seconds in all (``call_timeout`` per call,
    default the same); one CallResult per input, in order."""
    kwargs = dict(sandbox=sandbox, hash_seed=hash_seed, call_timeout=call_timeout, memory_mb=memory_mb)
    run = execute(source, entry_point, inputs, timeout, result_bytes=result_bytes, **kwargs)
    return results_of(run, len(inputs), result_bytes) if inputs else []


def execute(
    source: str,
    entry_point: str,
    inputs: list[str],
    timeout: float = 3.0,
    *,
    sandbox: Sandbox | None = None,
    hash_seed: str | None = None,
    call_timeout: float | None = None,
    memory_mb: int | None = None,
    result_bytes: int = RESULT_BYTES,
) -> Execution:
    """``run_calls``' sandboxed run itself: its Execution, whose ``frames`` hold each call's
    reply as the evaluator read it, wire text undecoded (``results_of`` decodes them)."""
    if not entry_point.isidentifier():
        raise ValueError(f"entry point {entry_point!r} is not a Python identifier")
    if sandbox is None:
        sandbox = default_sandbox(hash_seed if hash_seed is not None else "0")
    elif hash_seed is not None and str(hash_seed) != sandbox.hash_seed:
        raise ValueError(f"hash_seed {hash_seed!r}: this sandbox runs with PYTHONHASHSEED={sandbox.hash_seed}")
    if not inputs:
        return Execution(True, "completed", exit_code=0)
    limits = dataclasses.replace(sandbox.limits, timeout=timeout, memory_mb=memory_mb or sandbox.limits.memory_mb)
    job = {
        "entry_point": entry_point,
        "inputs": [str(i) for i in inputs],
        "call_timeout": call_timeout or timeout,
        "result_bytes": result_bytes,
    }
    return sandbox.run(source, mode="calls", calls=job, limits=limits)


def results_of(run: Execution, count: int, result_bytes: int = RESULT_BYTES) -> list[CallResult]:
    """The CallResults of a "calls" run: frames in order, decoded strictly; calls without a
    frame (the run timed out or failed) get the run's reason."""
    frames = run.frames
    if [f[0] for f in frames] != list(range(len(frames))) or len(frames) > count:
        why = f"the result channel is not well formed ({len(frames)} frames for {count} calls)"
        return [CallResult("crashed", detail=why)] * count
    results = [_result(status, text, result_bytes) for _, status, text in frames]
    missing = (
        CallResult("timeout", detail="the run timed out")
        if run.timed_out
        else CallResult("crashed", detail=run.result if run.result != "completed" else "no result for this call")
    )
    return results + [missing] * (count - len(results))


def _result(status: str, text: str, result_bytes: int) -> CallResult:
    if status != "ok":
        return CallResult(status if status in STATUSES else "crashed", detail=text)
    try:
        return CallResult("ok", decode(text, result_bytes + 16))
    except Unserializable as e:
        return CallResult("unserializable", detail=f"the reply is not plain data: {e}")


def check_plain(value: object) -> None:
    """Raise Unserializable unless ``value`` is plain data (expected values must be)."""
    encode(value, max_bytes=1 << 62)


def score_calls(
    source: str,
    entry_point: str,
    cases: list[tuple[str, object]],
    timeout: float = 3.0,
    *,
    numbers: str = "exact",
    **kwargs,
) -> Verdict:
    """Call ``entry_point`` on each case's input and compare with its expected value here,
    with ``strict_equal(value, expected, numbers)``; the sandbox never sees the expected values."""
    for number, (_, expected) in enumerate(cases, start=1):
        try:
            check_plain(expected)
        except Unserializable as e:
            raise ValueError(f"case {number}: the expected value is not plain data: {e}") from None
    results = run_calls(source, entry_point, [given for given, _ in cases], timeout, **kwargs)
    return judge(results, [expected for _, expected in cases], numbers)


def judge(results: list[CallResult], expected: list[object], numbers: str = "exact") -> Verdict:
    """The verdict of call results against expected values; the first failing case is the detail."""
    passed, first = 0, ""
    for number, (result, want) in enumerate(zip(results, expected), start=1):
        if result.status == "ok" and strict_equal(result.value, want, numbers):
            passed += 1
        elif not first:
            first = describe(number, result)
    total = len(expected)
    if total == 0:
        return Verdict(False, 0, 0, "failed: no test cases", results)
    return Verdict(passed == total, passed, total, "passed" if passed == total else first, results)


def describe(number: int, result: CallResult) -> str:
    """The results.jsonl detail of a failed case (numbered from 1)."""
    if result.status == "ok":
        return f"failed: wrong answer (case {number})"
    if result.status == "timeout":
        return f"timed out (case {number})"
    detail = f": {result.detail}" if result.detail else ""
    return f"failed: {result.status}{detail} (case {number})"

"""Run references in the sandbox (``codemill.verify.run_calls``) and decide what they return.

Each reference runs once per PYTHONHASHSEED of ``TasksConfig.hash_seeds()`` (a fresh
sandboxed process each time, every input a separate forked call). The first run decides
which inputs are cases; the later runs repeat those and must return the same values:

- an input whose call raises, or whose text does not evaluate, is dropped (tests often
  call a function on inputs it rejects); when no input is left the function is ``raises``;
- a call that times out makes the function ``timeout``; a call process that dies
  (``os._exit``, a signal, the memory limit, a fork bomb hitting the process limit) makes
  it ``crashed``; a return value that is not plain data makes it ``unserializable_output``;
- a later run that returns something else (or fails where the first did not) makes it
  ``nondeterministic``;
- a case whose value has no ``repr`` that ``ast.literal_eval`` reads back exactly (NaN,
  infinities, frozensets) is dropped, because tests store outputs as literals; none left
  is ``unserializable_output``; a function that returns None on every case is
  ``returns_none`` (a procedure: there is nothing to predict).

Expected values are decided here, in the trusted process, from decoded values; nothing
a reference prints or claims is used.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field

from codemill.evaluate.sandbox import run_parallel
from codemill.tasks.config import TasksConfig
from codemill.tasks.inputs import Example
from codemill.verify import CallResult, run_calls, strict_equal


@dataclass
class Outcome:
    """What running one reference gave: its cases (input, output repr), or why it has none."""

    cases: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    detail: str = ""
    disagreeing: list[dict] = field(default_factory=list)  # examples whose stated result is wrong
    seconds: float = 0.0


def literal_repr(value: object) -> str | None:
    """``repr(value)`` when ``ast.literal_eval`` reads it back strictly equal, else None."""
    text = repr(value)
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text if strict_equal(back, value) else None


def claim_disagrees(claimed: str, value: object) -> bool:
    """Whether an example's stated result (a doctest's output, an asserted literal) is wrong."""
    claimed = "\n".join(line for line in claimed.strip().splitlines() if not line.strip().startswith("```"))
    if claimed.strip() in (repr(value), str(value)):  # str: a doctest that shows print()-style output
        return False
    try:
        stated = ast.literal_eval(claimed)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return True
    return not strict_equal(stated, value, numbers="value")  # what `==` in the assertion would say


def _first_failure(results: list[CallResult], statuses: tuple[str, ...]) -> CallResult | None:
    return next((r for r in results if r.status in statuses), None)


def _timeout(given: str, timeout: float) -> Outcome:
    # the verifier's own wording depends on which limit fired first; this one depends on nothing but the input
    return Outcome(reason="timeout", detail=f"input ({given[:80]}): no result within the {timeout} s limit")


def judge_first(examples: list[Example], results: list[CallResult], timeout: float) -> Outcome:
    """The cases of the first run, or the reason there are none."""
    late = next((ex for ex, r in zip(examples, results) if r.status == "timeout"), None)
    if late:
        return _timeout(late.input, timeout)
    for status, reason in (
        ("crashed", "crashed"),
        ("no_entry_point", "raises"),
        ("unserializable", "unserializable_output"),
    ):
        bad = _first_failure(results, (status,))
        if bad:
            return Outcome(reason=reason, detail=bad.detail[:300])
    kept = [(ex, r) for ex, r in zip(examples, results) if r.status == "ok"]
    if not kept:
        bad = _first_failure(results, ("raises", "bad_input"))
        return Outcome(reason="raises", detail=f"every input fails: {bad.detail[:300] if bad else ''}")
    outcome = Outcome()
    for ex, r in kept:
        if ex.claimed is not None and claim_disagrees(ex.claimed, r.value):
            outcome.disagreeing.append(
                {"input": ex.input, "claimed": ex.claimed[:200], "returned": repr(r.value)[:200], "origin": ex.origin}
            )
    return outcome


def _rerun(
    config: TasksConfig, reference: str, entry_point: str, inputs: list[str], first: list[CallResult], kept: list[int]
) -> Outcome | None:
    """The later runs: None when each returns what the first did, else the rejection."""
    seeds = config.hash_seeds()
    for seed in seeds[1:]:
        again = _calls(config, reference, entry_point, [inputs[i] for i in kept], seed)
        for i, r in zip(kept, again):
            if r.status == "timeout":
                return _timeout(inputs[i], config.timeout)
            if r.status != "ok" or not strict_equal(r.value, first[i].value):
                what = f"returned {repr(r.value)[:80]}" if r.status == "ok" else f"{r.status}: {r.detail[:80]}"
                return Outcome(
                    reason="nondeterministic",
                    detail=f"input ({inputs[i][:80]}): PYTHONHASHSEED={seeds[0]} returned "
                    f"{repr(first[i].value)[:80]}, PYTHONHASHSEED={seed} {what}",
                )
    return None


def run_reference(config: TasksConfig, reference: str, entry_point: str, examples: list[Example]) -> Outcome:
    """All runs of one reference; the Outcome holds its cases or its rejection."""
    start = time.perf_counter()
    inputs = [ex.input for ex in examples]
    first = _calls(config, reference, entry_point, inputs, config.hash_seeds()[0])
    outcome = judge_first(examples, first, config.timeout)
    if not outcome.reason:
        kept = [i for i, r in enumerate(first) if r.status == "ok"]
        outcome = _rerun(config, reference, entry_point, inputs, first, kept) or outcome
    if not outcome.reason:
        outcome.cases = [(inputs[i], text) for i in kept if (text := literal_repr(first[i].value)) is not None]
        if not outcome.cases:
            outcome = Outcome(
                reason="unserializable_output", detail="no output has a literal repr (NaN, infinity, frozenset, ...)"
            )
        elif all(output == "None" for _, output in outcome.cases):
            # a procedure (it works by side effect on its arguments, or not at all): nothing to predict
            outcome = Outcome(reason="returns_none", detail=f"every one of its {len(outcome.cases)} cases returns None")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _calls(config: TasksConfig, reference: str, entry_point: str, inputs: list[str], seed: str) -> list[CallResult]:
    return run_calls(reference, entry_point, inputs, config.timeout, hash_seed=seed, memory_mb=config.memory_mb)


def run_all(config: TasksConfig, work: list[tuple[str, str, list[Example]]], workers: int) -> list[Outcome]:
    """``run_reference`` over (reference, entry point, examples) items, ``workers`` at a time."""
    return run_parallel(lambda item: run_reference(config, *item), work, workers, "tasks: run references")

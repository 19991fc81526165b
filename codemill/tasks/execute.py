"""Run references in the sandbox (``codemill.verify.run_calls``) and decide what they return.

Each reference runs once per PYTHONHASHSEED of ``TasksConfig.hash_seeds()`` (a fresh
sandboxed process each time, every input a separate forked call). The first run decides
which inputs are cases; the later runs repeat those and must return the same values.
References go in chunks of ``CHUNK``, one seed at a time over the chunk, so that with
``sandbox_url`` each (chunk, seed) is one "calls" request to the sandbox service
(:class:`RemoteCalls`) and in-process the chunk's runs share ``workers`` threads
(:class:`LocalCalls`); the judging below is the same code either way, and so are the
CallResults, so the tasks are too:

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
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tqdm import tqdm

from codemill.stage import InputError
from codemill.tasks.config import TasksConfig
from codemill.tasks.inputs import Example
from codemill.verify import CallResult, run_calls, strict_equal

CHUNK = 256  # references judged together (one request per seed with sandbox_url)
REQUEST_BYTES = 4 << 20  # sources and inputs per "calls" request (the service takes 16 MiB by default)
Job = tuple[str, str, list[str]]  # (reference, entry point, inputs)


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


def _disagreement(
    config: TasksConfig, inputs: list[str], first: list[CallResult], kept: list[int], seed: str, again: list[CallResult]
) -> Outcome | None:
    """None when a later run returned what the first did on every kept input, else the rejection."""
    first_seed = config.hash_seeds()[0]
    for i, r in zip(kept, again):
        if r.status == "timeout":
            return _timeout(inputs[i], config.timeout)
        if r.status != "ok" or not strict_equal(r.value, first[i].value):
            what = f"returned {repr(r.value)[:80]}" if r.status == "ok" else f"{r.status}: {r.detail[:80]}"
            return Outcome(
                reason="nondeterministic",
                detail=f"input ({inputs[i][:80]}): PYTHONHASHSEED={first_seed} returned "
                f"{repr(first[i].value)[:80]}, PYTHONHASHSEED={seed} {what}",
            )
    return None


def _cases(outcome: Outcome, inputs: list[str], first: list[CallResult], kept: list[int]) -> Outcome:
    outcome.cases = [(inputs[i], text) for i in kept if (text := literal_repr(first[i].value)) is not None]
    if not outcome.cases:
        return Outcome(
            reason="unserializable_output", detail="no output has a literal repr (NaN, infinity, frozenset, ...)"
        )
    if all(output == "None" for _, output in outcome.cases):
        # a procedure (it works by side effect on its arguments, or not at all): nothing to predict
        return Outcome(reason="returns_none", detail=f"every one of its {len(outcome.cases)} cases returns None")
    return outcome


def run_references(config: TasksConfig, items: list[tuple[str, str, list[Example]]], calls) -> list[Outcome]:
    """Every run of each (reference, entry point, examples) item, one seed at a time over all of
    them (``calls(jobs, seed) -> (results per job, seconds per job)``); one Outcome per item."""
    seeds = config.hash_seeds()
    inputs = [[ex.input for ex in examples] for _, _, examples in items]
    first, seconds = calls([(ref, name, ins) for (ref, name, _), ins in zip(items, inputs)], seeds[0])
    outcomes = [judge_first(examples, results, config.timeout) for (_, _, examples), results in zip(items, first)]
    kept = [[i for i, r in enumerate(results) if r.status == "ok"] for results in first]
    for seed in seeds[1:]:
        live = [n for n, outcome in enumerate(outcomes) if not outcome.reason]
        again, spent = calls([(items[n][0], items[n][1], [inputs[n][i] for i in kept[n]]) for n in live], seed)
        for n, results, took in zip(live, again, spent):
            seconds[n] += took
            outcomes[n] = _disagreement(config, inputs[n], first[n], kept[n], seed, results) or outcomes[n]
    done = []
    for n, outcome in enumerate(outcomes):
        outcome = outcome if outcome.reason else _cases(outcome, inputs[n], first[n], kept[n])
        outcome.seconds = seconds[n]
        done.append(outcome)
    return done


class LocalCalls:
    """``run_calls`` in this process, ``workers`` at a time; seconds are each job's own."""

    def __init__(self, config: TasksConfig, pool: ThreadPoolExecutor):
        self.config, self.pool = config, pool

    def __call__(self, jobs: list[Job], seed: str) -> tuple[list[list[CallResult]], list[float]]:
        def one(job: Job) -> tuple[list[CallResult], float]:
            start = time.perf_counter()
            found = run_calls(*job, self.config.timeout, hash_seed=seed, memory_mb=self.config.memory_mb)
            return found, time.perf_counter() - start

        done = list(self.pool.map(one, jobs))
        return [r for r, _ in done], [t for _, t in done]


class RemoteCalls:
    """The same runs as "calls" requests to ``config.sandbox_url`` (key in
    ``$config.sandbox_api_key_env``); a request's wall seconds are shared by its jobs."""

    def __init__(self, config: TasksConfig):
        from codemill.verify import client

        self.config, self.client = config, client
        self.api_key = os.environ.get(config.sandbox_api_key_env, "")
        if not self.api_key:
            raise InputError(
                f"tasks: --sandbox-url {config.sandbox_url}: ${config.sandbox_api_key_env} holds no API key"
            )
        self.isolation = client.isolation(config.sandbox_url)  # fails now, naming the URL, when it is not there

    def __call__(self, jobs: list[Job], seed: str) -> tuple[list[list[CallResult]], list[float]]:
        results: list[list[CallResult]] = []
        seconds: list[float] = []
        for batch in _batches(jobs):
            start = time.perf_counter()
            results += self.client.calls(
                batch,
                url=self.config.sandbox_url,
                api_key=self.api_key,
                hash_seed=seed,
                timeout=self.config.timeout,
                memory_mb=self.config.memory_mb,
            )
            seconds += [(time.perf_counter() - start) / len(batch)] * len(batch)
        return results, seconds


def _batches(jobs: list[Job]) -> list[list[Job]]:
    """Consecutive jobs in requests of at most ``REQUEST_BYTES`` of text (one job at least)."""
    batches: list[list[Job]] = []
    size = REQUEST_BYTES
    for job in jobs:
        length = len(job[0]) + sum(len(i) + 8 for i in job[2]) + 64
        if size + length > REQUEST_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(job)
        size += length
    return batches


def run_all(config: TasksConfig, work: list[tuple[str, str, list[Example]]], workers: int) -> list[Outcome]:
    """All runs of (reference, entry point, examples) items: on the sandbox service when
    ``config.sandbox_url`` is set, else in this process with ``workers`` threads."""
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        calls = RemoteCalls(config) if config.sandbox_url else LocalCalls(config, pool)
        with tqdm(
            total=len(work), desc="tasks: run references", unit=" fn", file=sys.stderr, disable=len(work) < 2
        ) as bar:
            for start in range(0, len(work), CHUNK):
                chunk = work[start : start + CHUNK]
                outcomes += run_references(config, chunk, calls)
                bar.update(len(chunk))
    return outcomes

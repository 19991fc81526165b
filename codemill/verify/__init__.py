"""verify: decide whether untrusted code is right, with the verdict taken outside it.

The contract other stages (tasks, synth, rl, evaluate) code to; docs/evaluate.md
("Verifier") says the same with examples.

Call mode (``calls.py``)::

    run_calls(source, entry_point, inputs, timeout=3.0, *, sandbox=None, hash_seed=None,
              call_timeout=None, memory_mb=None, result_bytes=RESULT_BYTES) -> list[CallResult]
    score_calls(source, entry_point, cases, timeout=3.0, *, numbers="exact", **run_calls_kwargs) -> Verdict
    judge(results, expected, numbers="exact") -> Verdict

- ``source`` (a reference or a candidate) runs in the sandbox of
  ``codemill.evaluate.sandbox`` with every isolation layer; ``inputs`` are argument source
  texts (``"-3, low=-2, high=2"``), each evaluated inside the sandbox, with the builtins
  as they were before the sample ran: ``entry_point(<input>)``. The sample is loaded once
  and its calls run in order in one process (module state carries over, as in a test
  file); a call that crashes (``os._exit``, a signal), hangs or replies out of turn ends
  that process and the next call runs in a fresh one.
- ``timeout`` bounds the whole run (wall seconds), ``call_timeout`` each call (default:
  ``timeout``); calls that the run's limit cuts off are ``timeout``.
- ``CallResult(status, value, detail)``: ``status`` is ``ok`` (``value`` holds the
  decoded return value), ``raises`` (an exception, ``BaseException`` subclasses and
  ``SystemExit`` included; an error while loading the source is ``raises`` with
  ``while loading: ...``), ``timeout``, ``unserializable`` (the return value is not plain
  data: a subclass, a cycle, too big), ``crashed`` (the call process died without a
  result: ``os._exit``, a signal, the memory limit), ``bad_input`` (the input text did
  not evaluate), ``no_entry_point``. ``detail`` is a one-line reason.
- ``hash_seed``: the sandbox's ``PYTHONHASHSEED`` (a string, default ``"0"``); without a
  ``sandbox`` argument one default sandbox per seed is started on first use and closed at
  exit. Give ``Sandbox(hash_seed=...)`` objects of your own to control limits and
  interpreters (``sandbox.hash_seed`` must then match ``hash_seed`` if both are given).
- ``score_calls(..., cases=[(input_source, expected_value), ...])`` returns
  ``Verdict(passed, passed_cases, total, detail, results)``; ``passed`` needs every case
  ``ok`` and ``strict_equal(value, expected, numbers)``; ``detail`` is what results.jsonl
  shows (``passed``, ``failed: wrong answer (case 3)``, ``timed out (case 2)``,
  ``failed: raises: ValueError: ... (case 1)``). Expected values must be plain data and
  are never sent to the sandbox.

Plain data and equality (``strict.py``): ``encode(value) -> str``, ``decode(text) ->
value``, ``strict_equal(a, b, numbers="exact"|"value")``, ``Unserializable``; exact
types only, ``NaN`` equals ``NaN``, ``-0.0`` differs from ``0.0`` in exact mode.

What holds: the expected values and the verdict never exist in a process that runs
untrusted code. The sample writes only on its own reply pipe, one ``<index> <status>
<text>`` line per call; this (trusted) process reads those lines in turn, with a
per-call deadline (``codemill/evaluate/call_relay.py``), decodes the text strictly and
compares. A sample can therefore only
choose the plain values its calls report, which is what returning them does:
return-value subclasses, patched builtins or serializers, trace functions, ``atexit``
hooks, fake lines on any descriptor, frame and memory scans, forks that outlive the call
and ``BaseException`` subclasses gain nothing (each has a test in
``tests/verify/test_verify_adversarial.py``, run as root and as uid 65534). What does not
hold: a sample that can compute the expected value passes (that is solving the task), and
what the sandbox itself does not cover (its docstring) applies here too.
"""

from codemill.verify.calls import (
    RESULT_BYTES,
    STATUSES,
    CallResult,
    Verdict,
    default_sandbox,
    judge,
    run_calls,
    score_calls,
)
from codemill.verify.strict import Unserializable, decode, encode, strict_equal

__all__ = [
    "RESULT_BYTES",
    "STATUSES",
    "CallResult",
    "Unserializable",
    "Verdict",
    "decode",
    "default_sandbox",
    "encode",
    "judge",
    "run_calls",
    "score_calls",
    "strict_equal",
]

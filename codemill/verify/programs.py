"""The service's request kinds for whole programs (synth), and stdio judged case by case.

- ``"program"``: each sample's ``completion`` is a whole program (a solution followed by
  plain ``assert`` tests); it passes when it runs to its end and the harness's pass marker
  is seen (the sandbox's "function" mode), so a program that exits early fails.
  ``task_id`` is only echoed back.
- ``"stdio_outputs"``: each sample's program runs once per stdin text in
  ``"inputs": {task_id: [stdin, ...]}``; the row has no verdict, only ``outputs``: one
  ``{"status", "stdout", "truncated"}`` per input, in order (``status`` is the sandbox's
  ``completed``, ``timed out`` or ``failed: ...``; ``stdout`` keeps at most
  ``"stdout_bytes"`` bytes, default ``STDOUT_BYTES``). Mutual verification compares them.
- ``"stdio"`` with ``"all_cases": true``: every test case runs, so the row can carry
  ``passed_cases``; ``result`` is still the first failing case's (evaluate's judge).
"""

from __future__ import annotations

from codemill.evaluate.sandbox import Sandbox, run_parallel

STDOUT_BYTES = 64 << 10
MAX_STDOUT_BYTES = 1 << 20
MAX_RUNS = 100_000


def score_programs(pairs, sandbox: Sandbox, workers: int) -> list[tuple[bool, str, dict]]:
    def one(pair):
        run = sandbox.run(pair[1], mode="function")
        return run.passed, run.result, {}

    return run_parallel(one, pairs, workers, "program")


def stdio_outputs(body: dict, pairs, sandbox: Sandbox, workers: int, bad) -> list[dict]:
    """One ``outputs`` list per sample (see the module docstring); ``bad`` is the BadRequest class."""
    inputs = body.get("inputs")
    if not isinstance(inputs, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in inputs.values()
    ):
        raise bad('"inputs" must be an object of task_id: [stdin strings]')
    missing = sorted({task_id for task_id, _ in pairs if task_id not in inputs})
    if missing:
        raise bad(f'{len(missing)} task ids have no "inputs": {", ".join(missing[:5])}')
    cap = body.get("stdout_bytes", STDOUT_BYTES)
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_STDOUT_BYTES:
        raise bad(f'"stdout_bytes" must be an integer in 1..{MAX_STDOUT_BYTES}')
    runs = [(n, i) for n, (task_id, _) in enumerate(pairs) for i in range(len(inputs[task_id]))]
    if len(runs) > MAX_RUNS:
        raise bad(f"{len(runs)} runs (samples x inputs); at most {MAX_RUNS} per request")

    def one(item):
        n, i = item
        task_id, program = pairs[n]
        run = sandbox.run(program, mode="stdio", stdin=inputs[task_id][i], stdout_bytes=cap)
        return {"status": run.result, "stdout": run.stdout, "truncated": run.truncated}

    outputs: list[list[dict]] = [[] for _ in pairs]
    for (n, _), out in zip(runs, run_parallel(one, runs, workers, "stdio_outputs")):
        outputs[n].append(out)
    return [{"outputs": o} for o in outputs]


def judge_all_cases(sandbox: Sandbox, task, completion: str) -> tuple[bool, str, dict]:
    """evaluate's stdio judge without stopping at the first failure: the same ``result``,
    plus how many cases passed."""
    from codemill.evaluate.stdio import stdout_matches

    program, passed, first = task.prompt + completion, 0, ""
    for number, (given, expected) in enumerate(task.cases, start=1):
        run = sandbox.run(program, mode="stdio", stdin=given, stdout_bytes=2 * len(expected) + 1024)
        if not run.passed:
            first = first or f"{run.result} (test {number})"
        elif run.truncated or not stdout_matches(run.stdout, expected):
            first = first or f"failed: wrong answer (test {number})"
        else:
            passed += 1
    total = len(task.cases)
    return passed == total, first or "passed", {"passed_cases": passed, "total": total}

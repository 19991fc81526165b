"""Call mode: each input's call in its own process, its status and value, verdicts decided here."""

import pytest

from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.verify import CallResult, judge, run_calls, score_calls


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(timeout=2.0, memory_mb=256)) as sb:
        yield sb


def test_inputs_are_argument_source_and_values_come_back_exactly(sandbox):
    source = "def clamp(x, low=0, high=1):\n    return (max(low, min(x, high)), {x}, -0.0, b'\\x00', None)\n"
    results = run_calls(source, "clamp", ["-3, low=-2, high=2", "5", "float('nan')"], sandbox=sandbox)
    assert results[0] == CallResult("ok", (-2, {-3}, -0.0, b"\x00", None))
    assert results[1].value[0] == 1 and type(results[1].value[0]) is int
    (member,) = results[2].value[1]
    assert results[2].status == "ok" and member != member  # NaN


def test_every_status_with_its_reason(sandbox):
    source = (
        "import os, time\nclass Odd(int):\n    pass\n"
        "def f(kind):\n    if kind == 'raise':\n        raise ValueError('bad value')\n"
        "    if kind == 'sleep':\n        time.sleep(60)\n    if kind == 'exit':\n        os._exit(7)\n"
        "    if kind == 'odd':\n        return Odd(1)\n"
        "    if kind == 'memory':\n        return bytearray(1 << 30)\n"
        "    return kind\n"
    )
    inputs = ["'fine'", "'raise'", "'sleep'", "'exit'", "'odd'", "'memory'", "undefined_name", "1,"]
    results = run_calls(source, "f", inputs, 3.0, sandbox=sandbox, call_timeout=0.5)
    assert [r.status for r in results] == [
        "ok",
        "raises",
        "timeout",
        "crashed",
        "unserializable",
        "raises",
        "bad_input",
        "ok",
    ]
    assert results[1].detail == "ValueError: bad value"
    assert results[3].detail == "ended without a result (exit status 7)"
    assert "Odd" in results[4].detail and "MemoryError" in results[5].detail
    assert "NameError" in results[6].detail and results[7].value == 1


def test_load_errors_missing_entry_points_and_the_run_limit(sandbox):
    assert [r.status for r in run_calls("def f(:\n", "f", ["1"], sandbox=sandbox)] == ["raises"]
    assert run_calls("x = 1\n", "f", ["1"], sandbox=sandbox)[0].status == "no_entry_point"
    results = run_calls(
        "import time\ndef f(x):\n    time.sleep(0.4)\n    return x\n",
        "f",
        [str(i) for i in range(6)],
        1.0,
        sandbox=sandbox,
    )
    statuses = [r.status for r in results]
    assert statuses[0] == "ok" and statuses[-1] == "timeout" and set(statuses) == {"ok", "timeout"}
    assert run_calls("def f():\n    return 1\n", "f", [], sandbox=sandbox) == []
    with pytest.raises(ValueError, match="identifier"):
        run_calls("", "not valid", ["1"], sandbox=sandbox)


def test_score_calls_compares_here_with_exact_types(sandbox):
    source = "def double(x):\n    return x * 2\n"
    verdict = score_calls(source, "double", [("1", 2), ("2.0", 4.0), ("'a'", "aa")], sandbox=sandbox)
    assert (verdict.passed, verdict.passed_cases, verdict.total, verdict.detail) == (True, 3, 3, "passed")
    verdict = score_calls(source, "double", [("1", 2), ("2", 4.0)], sandbox=sandbox)
    assert (verdict.passed, verdict.passed_cases, verdict.detail) == (False, 1, "failed: wrong answer (case 2)")
    assert score_calls(source, "double", [("2", 4.0)], numbers="value", sandbox=sandbox).passed
    with pytest.raises(ValueError, match="case 1: the expected value is not plain data"):
        score_calls(source, "double", [("1", object())], sandbox=sandbox)


def test_judge_reports_the_first_failure():
    results = [CallResult("ok", 1), CallResult("timeout", detail="x"), CallResult("raises", detail="E")]
    verdict = judge(results, [1, 2, 3])
    assert (verdict.passed_cases, verdict.detail) == (1, "timed out (case 2)")
    assert judge([], []).detail == "failed: no test cases"


def test_hash_seed_is_the_sandboxes():
    source = "def order(items):\n    return list(set(items))\n"
    words = repr([f"w{i}" for i in range(20)])
    seen = set()
    for seed in ("1", "2", "3"):
        with Sandbox(Limits(timeout=2.0), hash_seed=seed) as sb:
            seen.add(tuple(run_calls(source, "order", [words], sandbox=sb, hash_seed=seed)[0].value))
            with pytest.raises(ValueError, match="PYTHONHASHSEED"):
                run_calls(source, "order", [words], sandbox=sb, hash_seed="99")
    assert len(seen) > 1  # set order depends on the seed: what the tasks stage checks for


def test_a_run_s_results_are_bounded_in_all(sandbox, monkeypatch):
    import codemill.evaluate.sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "CHANNEL_BYTES", 1 << 20)
    results = run_calls("def f(x):\n    return 'x' * 200_000\n", "f", [str(i) for i in range(8)], sandbox=sandbox)
    assert [r.status for r in results] == ["ok"] * 5 + ["unserializable"] * 3
    assert results[0].value == "x" * 200_000 and "exceed 1048576 bytes" in results[-1].detail


def test_an_input_that_does_not_compile_is_bad_input_for_that_call_only(sandbox):
    # One that does not compile is that call's bad_input, with the reason; the others run.
    results = run_calls("def f(x):\n    return x * 2\n", "f", ["1", "1 +", "3"], sandbox=sandbox)
    assert [(r.status, r.value) for r in results] == [("ok", 2), ("bad_input", None), ("ok", 6)]
    assert results[1].detail.startswith("SyntaxError")


def test_a_sample_rebinding_eval_or_compile_does_not_change_its_inputs(sandbox):
    source = (
        "import builtins\n"
        "builtins.eval = lambda *a, **k: ((99,), {})\n"
        "builtins.compile = None\n"
        "def f(x):\n    return x\n"
    )
    assert [r.value for r in run_calls(source, "f", ["1", "2"], sandbox=sandbox)] == [1, 2]

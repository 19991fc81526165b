"""Reward hacks against call mode, one per property, as root and as an ordinary user (uid 65534).

The cases are in adversarial_calls.py; the ordinary-user run drops privileges with setpriv,
as tests/evaluate/test_evaluate_sandbox_user.py does, and is skipped (with the reason)
where that is not possible.
"""

import json
import os
import subprocess

import pytest

from codemill.evaluate.sandbox import Sandbox
from tests.evaluate.test_evaluate_sandbox_user import REPO, USER, _interpreter
from tests.verify import adversarial_calls

SCRIPT = os.path.join(REPO, "tests", "verify", "adversarial_calls.py")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(adversarial_calls.LIMITS) as sb:
        yield sb


@pytest.fixture(scope="module")
def as_user(tmp_path_factory):
    import shutil

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching to an ordinary user needs root and setpriv")
    python = _interpreter()
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run with codemill importable")
    home = str(tmp_path_factory.mktemp("ordinary-user"))
    os.chmod(os.path.dirname(home), 0o755)
    os.chown(home, 65534, 65534)
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
    proc = subprocess.run(USER + [python, SCRIPT], capture_output=True, text=True, env=env, cwd=home, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(adversarial_calls.CASES))
def test_reward_hack_wins_nothing(sandbox, case):
    assert adversarial_calls.CASES[case](sandbox) == []


def test_the_ordinary_user_run_has_every_layer(as_user):
    assert as_user["_isolation"]["evaluator_root"] is False
    assert as_user["_isolation"]["missing"] == [], as_user["_isolation"]


@pytest.mark.parametrize("case", sorted(adversarial_calls.CASES))
def test_reward_hack_wins_nothing_as_ordinary_user(as_user, case):
    assert as_user[case] == []

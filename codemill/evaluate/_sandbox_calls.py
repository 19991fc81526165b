"""Call mode inside the sandbox: call the entry point on each input, send back plain values.

Loaded by the fork server with ``_sandbox_inner.py`` (standard library only, Python >= 3.9).
It runs in the sandboxed inner process after every isolation layer is in place, as the
**call harness**: a process that never runs untrusted code. For each input it forks a
**call process**, which closes the result channel, evaluates the input's argument source,
executes the sample, calls the entry point, encodes the return value with the strict
serializer (``codemill/verify/strict.py``) and writes one reply on a pipe of its own.
The harness reads that reply (capped, with a per-call deadline), keeps only its status word
and text, and writes one frame per call, in order, on the result channel:
``[nonce, index, status, text]`` as a JSON line.

So nothing the sample does can write to the channel: it never runs in a process that holds
it. What it controls is the reply of its own call (a status word and the wire text of a
value, which the trusted parent decodes strictly and compares with the expected value it
never sent), so forging a reply is the same as returning that value.
"""

import builtins
import importlib.util
import json
import os
import re
import select
import signal
import sys
import time
from os import _exit as _hard_exit
from os import write as _raw_write

_STRICT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "verify", "strict.py")
_spec = importlib.util.spec_from_file_location("_codemill_strict", _STRICT_PATH)
strict = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strict)

REPLIES = ("ok", "raises", "unserializable", "bad_input", "no_entry_point")
SLACK = 0.05  # seconds kept back from the run's limit so the harness reports before the outer kill


def run_calls(job, done_w):
    """Every call of the job, one frame each on ``done_w``; then leave (never returns)."""
    nonce, entry, inputs = job.pop("nonce"), job["entry_point"], job["inputs"]
    per_call, result_bytes = job["call_timeout"], job["result_bytes"]
    deadline = time.monotonic() + job["limits"]["timeout"] - SLACK
    clean_builtins = dict(builtins.__dict__)  # taken before any sample ran: inputs see these
    try:
        compiled, load_error = compile(job.pop("code"), "<sample>", "exec"), ""
    except BaseException as e:  # SyntaxError, or a source too deep to compile
        compiled, load_error = None, _describe(e)
    def emit(index, status, text):
        _raw_write(done_w, (json.dumps([nonce, index, status, text]) + "\n").encode("ascii"))

    index = 0
    while index < len(inputs):
        if deadline - time.monotonic() <= 0:
            emit(index, "timeout", "the run's time limit was reached before this call")
            index += 1
        elif compiled is None:
            emit(index, "raises", "while loading: " + load_error)
            index += 1
        else:
            index = _call_process(compiled, entry, inputs, index, per_call, deadline, result_bytes,
                                  clean_builtins, done_w, emit)
        _reap_orphans()
    _hard_exit(0)


def _call_process(compiled, entry, inputs, start, per_call, deadline, result_bytes, clean_builtins, done_w, emit):
    """Calls ``start``.. in one call process (the sample loaded once, as a test file calls a
    function repeatedly); a call that crashes, hangs or replies out of turn ends that process
    and the next call gets a fresh one. Returns the index of the first call not yet framed."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        emit(start, "crashed", "cannot start the call: %s" % e)
        return start + 1
    if pid == 0:
        try:
            os.close(r)
            os.close(done_w)  # the sample never holds the result channel
            _calls(compiled, entry, inputs, start, w, result_bytes, clean_builtins)
        finally:
            _hard_exit(0)
    os.close(w)
    try:
        return _relay(r, pid, start, len(inputs), per_call, deadline, result_bytes + 64, emit)
    finally:
        os.close(r)
        for kill in (os.kill, os.killpg):  # the call process and what it left in its group
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _relay(r, pid, index, count, per_call, deadline, cap, emit):
    """Frame the call process's replies (``<index> <status> <text>`` lines) as they arrive."""
    buffer, started = b"", time.monotonic()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            end = min(started + per_call, deadline)
            remaining = end - time.monotonic()
            if remaining <= 0:
                emit(index, "timeout", "the call ran past %.3g s" % (time.monotonic() - started))
                return index + 1
            fds = [r] + ([pidfd] if pidfd is not None else [])
            ready = select.select(fds, [], [], remaining if pidfd is not None else min(remaining, 0.005))[0]
            exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            chunk = _drain(r, cap) if (r in ready or exited) else b""
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                number, _, rest = line.decode("ascii", "replace").partition(" ")
                word, _, text = rest.partition(" ")
                if number != str(index) or word not in REPLIES:
                    emit(index, "crashed", "the call's reply is malformed")
                    return index + 1
                emit(index, word, text)
                index, started = index + 1, time.monotonic()
                if index == count:
                    return index
            if len(buffer) > cap:
                emit(index, "unserializable", "the result is larger than %d bytes" % (cap - 64))
                return index + 1
            if r in ready and not chunk and not exited and pidfd is not None:  # EOF: it is probably exiting
                select.select([pidfd], [], [], max(0.0, min(end - time.monotonic(), 1.0)))
                exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            if exited or (r in ready and not chunk):
                status = os.waitpid(pid, 0)[1] if exited else 0
                emit(index, "crashed", _ended(status) if exited else "the call process closed its reply pipe")
                return index + 1
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _ended(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "killed by %s" % (signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig)
    return "ended without a result (exit status %d)" % os.WEXITSTATUS(status)


def _one_call(compiled, entry, given, timeout, result_bytes, clean_builtins, channels):
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError as e:
        os.close(r)
        os.close(w)
        return "crashed", "cannot start the call: %s" % e
    if pid == 0:
        try:
            os.close(r)
            for fd in channels:  # the sample never holds the result channel (or the requests)
                os.close(fd)
            _call(compiled, entry, given, w, result_bytes, clean_builtins)
        finally:
            _hard_exit(0)
    os.close(w)
    data, status, timed_out = _collect(r, pid, timeout, result_bytes + 64)
    os.close(r)
    try:
        os.killpg(pid, signal.SIGKILL)  # what the call left running (unless it left the group)
    except OSError:
        pass
    if timed_out:
        return "timeout", "the call ran past %.3g s" % timeout
    return _reply(data, status, result_bytes)


def _reply(data, status, result_bytes):
    if len(data) > result_bytes + 32:
        return "unserializable", "the result is larger than %d bytes" % result_bytes
    word, _, text = data.decode("ascii", "replace").partition(" ")
    if data.endswith(b"\n") and word in REPLIES:
        return word, text[:-1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "crashed", "killed by %s" % name
    if data:
        return "crashed", "the call's reply is malformed"
    return "crashed", "ended without a result (exit status %d)" % os.WEXITSTATUS(status)


def _collect(r, pid, timeout, cap):
    """Read the call's reply until the call process exits or the deadline passes."""
    end = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    data, reading = b"", True
    try:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                return data, os.waitpid(pid, 0)[1], True
            fds = ([r] if reading else []) + ([pidfd] if pidfd is not None else [])
            ready = select.select(fds, [], [], remaining if pidfd is not None else min(remaining, 0.005))[0]
            if r in ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    reading = False
                elif len(data) <= cap:
                    data += chunk
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                if reading:
                    data += _drain(r, cap - len(data))
                return data, os.waitpid(pid, 0)[1], False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _drain(fd, room):
    os.set_blocking(fd, False)
    data = b""
    try:
        while len(data) <= room:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    return data


# ---------------------------------------------------------------------------- check mode


class CandidateFailed(Exception):
    """A proxied candidate call did not return a plain value (raised inside ``check``)."""


def run_check(job, done_w):
    """Check mode: the benchmark's ``check(candidate)`` runs in this process (trusted test
    code only); each candidate call is proxied to a call server forked *before* the test is
    read (from its own descriptor), so no process that runs the sample holds the test, its
    expected values or the result channel. Writes ``ok <nonce>`` when ``check`` returned."""
    nonce, entry, check_fd = job.pop("nonce"), job["entry_point"], job.pop("check_fd")
    clean_builtins = dict(builtins.__dict__)
    try:
        compiled, load_error = compile(job.pop("code"), "<sample>", "exec"), ""
    except BaseException as e:
        compiled, load_error = None, _describe(e)
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
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
        test = f.read()
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
    requests = os.fdopen(req_r, "rb")
    for line in requests:
        try:
            args, kwargs = strict.decode(line.decode("ascii").rstrip("\n"))
            given = (tuple(args), kwargs)
        except BaseException as e:
            status, text = "bad_input", _describe(e)
        else:
            if compiled is None:
                status, text = "raises", "while loading: " + load_error
            else:
                status, text = _one_call(compiled, entry, given, job["call_timeout"], job["result_bytes"],
                                         clean_builtins, (rep_w, req_r))
        _raw_write(rep_w, ("%s %s\n" % (status, text.replace("\n", " "))).encode("ascii", "backslashreplace"))
        _reap_orphans()


def _reap_orphans():
    """Zombies of processes a call left behind (re-parented to this PID 1) count as processes."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _pack(*args, **kwargs):
    return args, kwargs


def _call(compiled, entry, given, w, result_bytes, clean_builtins):
    """The call process: the only place untrusted code runs in call and check modes.
    ``given`` is argument source text (call mode) or the decoded (args, kwargs) (check mode)."""
    os.setpgid(0, 0)
    try:
        args, kwargs = given if type(given) is tuple else eval(
            compile("_pack(%s\n)" % given, "<input>", "eval"), {"__builtins__": clean_builtins, "_pack": _pack})
    except BaseException as e:
        return _send(w, "bad_input", _describe(e))
    namespace = {"__name__": "__sample__", "__builtins__": builtins}
    try:
        exec(compiled, namespace)
    except BaseException as e:  # SystemExit and other BaseExceptions included
        return _send(w, "raises", "while loading: " + _describe(e))
    function = namespace.get(entry)
    if not callable(function):
        return _send(w, "no_entry_point", "%s is not defined (or not callable)" % entry)
    try:
        value = function(*args, **kwargs)
    except BaseException as e:
        return _send(w, "raises", _describe(e))
    try:
        text = strict.encode(value, result_bytes)
    except BaseException as e:
        return _send(w, "unserializable", _describe(e))
    _send(w, "ok", text)


def _calls(compiled, entry, inputs, start, w, result_bytes, clean_builtins):
    """The call process of call mode: load the sample, then one reply line per call."""
    os.setpgid(0, 0)
    namespace = {"__name__": "__sample__", "__builtins__": builtins}
    try:
        exec(compiled, namespace)
        function, failure = namespace.get(entry), None
        if not callable(function):
            failure = ("no_entry_point", "%s is not defined (or not callable)" % entry)
    except BaseException as e:  # SystemExit and other BaseExceptions included
        failure = ("raises", "while loading: " + _describe(e))
    for index in range(start, len(inputs)):
        if failure is not None:
            _line(w, index, *failure)
            continue
        try:
            args, kwargs = eval(compile("_pack(%s\n)" % inputs[index], "<input>", "eval"),
                                {"__builtins__": clean_builtins, "_pack": _pack})
        except BaseException as e:
            _line(w, index, "bad_input", _describe(e))
            continue
        try:
            value = function(*args, **kwargs)
        except BaseException as e:
            _line(w, index, "raises", _describe(e))
            continue
        try:
            text = strict.encode(value, result_bytes)
        except BaseException as e:
            _line(w, index, "unserializable", _describe(e))
            continue
        _line(w, index, "ok", text)
    _send(w, "", "")


def _line(w, index, word, text):
    payload = ("%d %s %s\n" % (index, word, text.replace("\n", " "))).encode("ascii", "backslashreplace")
    while payload:
        payload = payload[_raw_write(w, payload):]


def _send(w, word, text):
    try:
        payload = (word + " " + text.replace("\n", " ") + "\n").encode("ascii", "backslashreplace") if word else b""
        while payload:
            payload = payload[_raw_write(w, payload):]
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):  # after the reply: a stream the sample broke changes nothing
        try:
            stream.flush()
        except BaseException:
            pass
    _hard_exit(0)


def _describe(e):
    try:
        if type(e) is strict.Unserializable:
            text = str(e)
        else:
            text = "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__
    except BaseException:
        text = "an exception that cannot be described"
    return re.sub(r"0x[0-9a-fA-F]+", "0x...", text)[:300].replace("\n", " ")

"""Call and check modes: the entry point called on inputs, plain values sent back.

Loaded by the fork server with ``_sandbox_inner.py`` (standard library only, Python >= 3.9).

**Call mode** (``codemill.verify.run_calls``). The sample's process sets up every
isolation layer, loads the sample once and calls the entry point on each input in turn
(the input's argument source evaluated with the builtins taken before the sample ran),
writing one reply line per call, ``<index> <status> <text>``, where ``text`` is the strict
serializer's wire form of the returned value (``codemill/verify/strict.py``), on its done
pipe. Only the trusted evaluator reads that pipe (``codemill/evaluate/call_relay.py``):
in turn, with a per-call deadline; a reply out of turn or malformed, a crash or a hang
ends that process (that call is ``crashed`` / ``timeout``) and the next call runs in a new
one, started at its index. Each process is PID 1 of a PID namespace of its own, so killing
it ends everything it started. The sample thus writes only on its own reply pipe, and
what it writes there is a choice of plain values for its calls, which returning them gives
too; the expected values never enter the sandbox (the evaluator compares).

Check mode is in ``_sandbox_check.py``; both share the reply relay and the call helpers here.
"""

import builtins
import importlib.util
import os
import re
import select
import signal
import sys
import time
from os import _exit as _hard_exit
from os import write as _raw_write

# Bound at load, like the two above: a sample that rebinds builtins.eval or compile
# changes no later call's input.
_eval, _compile = eval, compile

_STRICT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "verify", "strict.py")
_spec = importlib.util.spec_from_file_location("_codemill_strict", _STRICT_PATH)
strict = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strict)

REPLIES = ("ok", "raises", "unserializable", "bad_input", "no_entry_point")


def run_inner_calls(job, done_w):
    """Call mode, in the sample's process: the calls from ``job["start"]`` on, one reply
    line each on ``done_w`` (read by the evaluator); never returns."""
    clean_builtins = dict(builtins.__dict__)  # taken before any sample ran: inputs see these
    try:
        compiled, load_error = compile(job.pop("code"), "<sample>", "exec"), ""
    except BaseException as e:  # SyntaxError, or a source too deep to compile
        compiled, load_error = None, _describe(e)
    job.pop("nonce", None)
    _calls(
        compiled,
        load_error,
        job["entry_point"],
        job["inputs"],
        job["start"],
        done_w,
        job["result_bytes"],
        clean_builtins,
    )
    _hard_exit(0)


def warm():
    """Run the side-effect-free steps of a call once (for the fork server's warm-up,
    ``_sandbox_inner.prepare_image``): copy the builtins, evaluate an input, encode a
    value, format a reply line, describe an exception."""
    clean_builtins = dict(builtins.__dict__)
    _arguments(0, ["1, 'a'"], clean_builtins)
    text = strict.encode([1, -2.5, "a", b"b", None, True, (1,), {"k": {1}}], 1 << 18)
    ("%d %s %s\n" % (0, "ok", text.replace("\n", " "))).encode("ascii", "backslashreplace")
    _describe(ValueError("0x1"))


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


def flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


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


def _arguments(index, inputs, clean_builtins):
    """Call ``index``'s (args, kwargs): its input evaluated afresh with the builtins taken
    before the sample ran."""
    code = _compile("_pack(%s\n)" % inputs[index], "<input>", "eval")
    return _eval(code, {"__builtins__": clean_builtins, "_pack": _pack})


def _calls(compiled, load_error, entry, inputs, start, w, result_bytes, clean_builtins):
    """Call mode's untrusted part: load the sample, then one reply line per call."""
    namespace = {"__name__": "__sample__", "__builtins__": builtins}
    function, failure = None, ("raises", "while loading: " + load_error) if compiled is None else None
    try:
        if compiled is not None:
            exec(compiled, namespace)
            function = namespace.get(entry)
            if not callable(function):
                failure = ("no_entry_point", "%s is not defined (or not callable)" % entry)
    except BaseException as e:  # SystemExit and other BaseExceptions included
        failure = ("raises", "while loading: " + _describe(e))
    for index in range(start, len(inputs)):
        if failure is not None:
            _line(w, index, *failure)
            continue
        try:
            args, kwargs = _arguments(index, inputs, clean_builtins)
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
        flush_streams()  # before the reply: the evaluator ends this process once it has all replies
        _line(w, index, "ok", text)
    _send(w, "", "")


def _line(w, index, word, text):
    payload = ("%d %s %s\n" % (index, word, text.replace("\n", " "))).encode("ascii", "backslashreplace")
    while payload:
        payload = payload[_raw_write(w, payload) :]


def _send(w, word, text):
    try:
        payload = (word + " " + text.replace("\n", " ") + "\n").encode("ascii", "backslashreplace") if word else b""
        while payload:
            payload = payload[_raw_write(w, payload) :]
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

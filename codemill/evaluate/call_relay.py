"""Call mode on the evaluator's side: one sample's calls as a series of sandboxed processes.

The sample process (``_sandbox_calls.run_inner_calls``) loads the sample once and writes
one reply line per call, ``<index> <status> <text>``, on its done pipe, which only this
trusted process reads. Each reply must come in turn and within the per-call deadline; a
reply out of turn, malformed or too large, a crash or a hang ends that process (the fork
server kills it: its PID namespace goes with it) and that call is ``crashed`` /
``timeout`` / ``unserializable``; the next call then runs in a new process, started at
its index. The expected values never enter the sandbox: ``codemill.verify`` compares
the returned values here.
"""

from __future__ import annotations

import signal
import time

from codemill.evaluate._sandbox_pipes import Capture

REPLIES = ("ok", "raises", "unserializable", "bad_input", "no_entry_point")
SLACK = 0.25  # seconds the server's own kill waits past the run's limit: the relay decides first
CLOSED_GRACE = 1.0  # seconds to wait for the exit report after a process closed its reply pipe


class Replies:
    """The reply lines of one process running calls ``index``.. in turn; ``emit(index,
    status, text)`` gets each call's outcome once. Its clocks start when the process does
    (``begin``: a job may wait for a free slot in the server first, a restart too): the
    process may use ``left`` seconds, what remains of the run's limit."""

    def __init__(self, index: int, count: int, per_call: float, left: float, cap: int, emit):
        self.index, self.count, self.per_call, self.left = index, count, per_call, left
        self.cap, self.emit, self.buffer = cap, emit, b""
        self.begun: float | None = None  # when the process started
        self.started: float | None = None  # when the current call began
        self.over = False  # this process answers no further call
        self.closed_at: float | None = None

    def begin(self) -> None:
        if self.begun is None:
            self.begun = self.started = time.monotonic()

    def used(self) -> float:
        """Seconds of the run's limit this process used (from its start until now)."""
        return 0.0 if self.begun is None else time.monotonic() - self.begun

    def wakeup(self) -> float | None:
        """When the current call runs out of time (monotonic), or None (not started, or over)."""
        if self.over or self.started is None:
            return None
        wake = min(self.started + self.per_call, self.begun + self.left)
        return wake if self.closed_at is None else min(wake, self.closed_at + CLOSED_GRACE)

    def feed(self, chunk: bytes) -> bool:
        """Take reply bytes; True when the process must be killed (it broke the protocol)."""
        if self.over:
            return False
        if self.started is None:  # a reply read before the server's "started" event
            self.begin()
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            number, _, rest = line.decode("ascii", "replace").partition(" ")
            word, _, text = rest.partition(" ")
            if number != str(self.index) or word not in REPLIES:
                return self._end("crashed", "the call's reply is malformed")
            self.emit(self.index, word, text)
            self.index, self.started = self.index + 1, time.monotonic()
            if self.index == self.count:
                self.over = True
                return False
        if len(self.buffer) > self.cap:
            return self._end("unserializable", "the result is larger than %d bytes" % (self.cap - 64))
        return False

    def closed(self) -> None:
        """The reply pipe closed: the exit report should follow (``finish``) within a second."""
        self.closed_at = time.monotonic()

    def expire(self) -> bool:
        """The wake-up time passed: the current call timed out (or closed its pipe and lives on)."""
        if self.over:
            return False
        if self.closed_at is not None and time.monotonic() >= self.closed_at + CLOSED_GRACE:
            return self._end("crashed", "the call process closed its reply pipe")
        return self._end("timeout", "the call ran past %.3g s" % (time.monotonic() - self.started))

    def finish(self, end: dict | None) -> int:
        """The process is gone (its exit report, if any): the call it did not answer crashed.
        Returns the first call not yet emitted."""
        if not self.over and self.index < self.count:
            self._end("crashed", ended(end) if end else "the sandbox did not report the call process's end")
        return self.index

    def _end(self, status: str, text: str) -> bool:
        self.emit(self.index, status, text)
        self.index += 1
        self.over = True
        return True


def ended(end: dict) -> str:
    if "signal" in end:
        sig = end["signal"]
        return "killed by %s" % (signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig)
    if "setup_error" in end:
        return end["setup_error"]
    return "ended without a result (exit status %s)" % end.get("exit_code")


def run(sandbox, job: dict, code: str, out: Capture, grace: float):
    """All of ``job``'s calls (``inputs``, ``call_timeout``, ``result_bytes``, ``channel_bytes``),
    as many processes as crashes and hangs need; returns the run's Execution."""
    from codemill.evaluate.sandbox import Execution, IsolationUnavailable

    count, limits = len(job["inputs"]), job["limits"]
    left = limits["timeout"]  # of the run's limit: spent only while one of its processes runs
    frames, room = [], [job["channel_bytes"]]

    def emit(index: int, status: str, text: str) -> None:
        if len(text) + 200 > room[0]:  # every frame is kept: bound them all
            status, text = "unserializable", "the run's results exceed %d bytes in all" % job["channel_bytes"]
        room[0] -= len(text) + 200
        frames.append((index, status, text))

    index, setup, setup_error = 0, None, ""
    while index < count:
        if left <= 0:
            emit(index, "timeout", "the run's time limit was reached before this call")
            index += 1
            continue
        attempt = dict(job, start=index, limits=dict(limits, timeout=left + SLACK))
        process = sandbox.start_job(attempt, code)
        replies = Replies(index, count, job["call_timeout"], left, job["result_bytes"] + 64, emit)
        process.read(out, left + grace, replies)
        left -= replies.used()
        end = process.event("exit")
        if end is not None and setup is None:
            setup, setup_error = process.setup_report(end)
        if end is not None and ("error" in end or "error" in setup):  # isolation required but incomplete
            raise IsolationUnavailable(
                "sandbox isolation is required (require_isolation) but unavailable: "
                + (end.get("error") or setup["error"])
            )
        if setup_error or out.killed:
            break  # the sample process cannot even start here, or the server missed its deadline
        index = replies.finish(end)
    ex = Execution(True, "completed", exit_code=0, stdout=out.text(1), stderr=out.text(2), truncated=out.truncated)
    ex.setup, ex.frames = setup or {}, frames
    if setup_error:
        ex.passed, ex.result = False, f"failed: sandbox error: {setup_error}"
    elif out.killed:
        ex.passed, ex.result = False, "failed: sandbox error: evaluator deadline reached"
    elif out.exceeded:
        ex.passed, ex.result = False, "failed: output limit exceeded"
    return ex

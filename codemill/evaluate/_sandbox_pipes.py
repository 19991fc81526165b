"""The evaluator's side of one sandboxed run: read its pipes with caps and a deadline, ask
the server to kill what is left past the deadline, and remove its working directory."""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import stat
import time


def tail(text: str) -> str:
    """The last line of some output, as a short parenthesised note (or nothing)."""
    last = text.strip().splitlines()[-1:] if text.strip() else []
    return f" ({last[0][:200]})" if last else ""


def events(data: bytes) -> list[dict]:
    """The JSON events the fork server wrote on a run's control pipe."""
    parsed = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    return parsed


class Capture:
    """Output of one run: stdout/stderr up to their caps, the whole control stream."""

    def __init__(self, stdout_bytes: int, stderr_bytes: int, max_total: int):
        self.caps = {1: stdout_bytes, 2: stderr_bytes}
        self.data = {1: bytearray(), 2: bytearray()}
        self.ctl = b""
        self.total = 0
        self.max_total = max_total
        self.truncated = self.exceeded = self.killed = False

    def add(self, stream: int, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.caps[stream] - len(self.data[stream])
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data[stream] += chunk[:room]
        self.exceeded = self.exceeded or self.total > self.max_total

    def text(self, stream: int) -> str:
        return bytes(self.data[stream]).decode("utf-8", "replace")


class Job:
    """The evaluator's ends of one job on the fork server (stdout, stderr, control and done
    pipes) and a way to ask the server to kill it. The done pipe's first line is the
    sample process's setup report, written before any untrusted code runs."""

    STDOUT, STDERR, CONTROL, DONE = range(4)
    SETUP_BYTES = 4096

    def __init__(self, fds: list[int], kill, done_bytes: int):
        self.fds, self.kill, self.done_bytes = fds, kill, done_bytes
        self.ctl = self.setup = self.done = b""
        self.set_up = False  # the setup line is complete
        self._events: list[dict] | None = None  # parsed once all is read

    def event(self, name: str) -> dict | None:
        """The last control event of that name the server wrote ("started", "exit")."""
        if self._events is None:
            self._events = events(self.ctl)
        return next((e for e in reversed(self._events) if e.get("event") == name), None)

    def read(self, out: Capture, budget: float, replies=None) -> None:
        """Read every pipe until all are closed (the sample's processes are gone and the
        server reported its end). ``replies`` (call mode) gets the done pipe as it arrives
        and may ask for the process to be killed; past ``budget`` seconds from the process's
        start (a queued job waits for a slot first) the server has missed its own deadline:
        it is asked to kill it, and 5 s later reading stops. A job still waiting for a slot
        has no backstop: its pipes are held by the server or by its set-up process, which
        dies with the server (PR_SET_PDEATHSIG, or its go pipe's end of file)."""
        self.deadline = math.inf
        self.budget, self.started = budget, False
        poller, self.open = select.poll(), {fd: stream for stream, fd in enumerate(self.fds)}
        for fd in self.open:
            poller.register(fd, select.POLLIN)
        try:
            while self.open:
                now = time.monotonic()
                if now >= self.deadline and out.killed:
                    break  # still open after the kill: a process outside our reach holds them; stop reading
                if now >= self.deadline:
                    out.killed = True
                    self.kill()
                    self.deadline = now + 5.0  # the pipes close once the processes are gone
                    continue
                wake = replies.wakeup() if replies is not None else None
                if wake is not None and now >= wake:
                    if replies.expire():
                        self.kill()
                    continue
                until = min(self.deadline, wake or math.inf)
                for fd, _ in poller.poll(None if until == math.inf else max(1, math.ceil((until - now) * 1000))):
                    if fd in self.open:
                        self._take(fd, os.read(fd, 65536), out, replies, poller)
        finally:
            for fd in self.fds:
                os.close(fd)

    def _take(self, fd: int, chunk: bytes, out: Capture, replies, poller) -> None:
        stream = self.open[fd]
        if not chunk:
            self._stop(fd, poller)
            if stream == self.DONE and replies is not None:
                replies.closed()
        elif stream == self.CONTROL:
            self.ctl += chunk
            if not self.started and b'"started"' in self.ctl:  # the server's first event
                self.started, self.deadline = True, time.monotonic() + self.budget
                if replies is not None:
                    replies.begin()
        elif stream == self.DONE and not self.set_up:
            self._take_setup(fd, chunk, out, replies, poller)
        elif stream == self.DONE and replies is not None:
            if replies.feed(chunk):
                self.kill()
        elif stream == self.DONE:
            self.done = (self.done + chunk)[: self.done_bytes]
        else:
            out.add(stream + 1, chunk)
            if out.exceeded:  # stop listening: the sample's further writes fail (EPIPE)
                for fd in self.fds[:2]:
                    self._stop(fd, poller)

    def _take_setup(self, fd: int, chunk: bytes, out: Capture, replies, poller) -> None:
        """The setup line (at most SETUP_BYTES; a longer one is malformed), then the rest."""
        self.setup += chunk
        line, newline, rest = self.setup.partition(b"\n")
        if not newline and len(self.setup) <= self.SETUP_BYTES:
            return
        self.setup, self.set_up = line[: self.SETUP_BYTES] if newline else b"", True
        if rest:
            self._take(fd, rest, out, replies, poller)

    def _stop(self, fd: int, poller) -> None:
        if self.open.pop(fd, None) is not None:
            poller.unregister(fd)

    def setup_report(self, end: dict) -> tuple[dict, str]:
        """The layers this run had (the server's part and the sample's own report), and why
        they are unknown if the sample process ended before reporting them."""
        base = dict((self.event("started") or end).get("setup", {}))
        try:
            own = json.loads(self.setup.decode("utf-8"))
        except ValueError:
            own = None
        if isinstance(own, dict) and ("error" in own or "setup_error" not in end):
            return dict(base, **own), ""  # an isolation error it reported comes first: the caller raises
        if "setup_error" in end:
            return base, end["setup_error"]
        return base, "the sandboxed process ended before finishing its setup"


def remove_tree(path: str) -> None:
    def make_writable(func, p, _exc):
        # A sample may leave directories without write/search permission for its owner.
        parent = os.path.dirname(p)
        for d in (parent, p):
            try:
                os.chmod(d, stat.S_IRWXU)
            except OSError:
                pass
        try:
            func(p)
        except OSError:
            pass

    try:
        os.rmdir(path)  # most samples leave their folder empty
    except OSError:
        shutil.rmtree(path, onerror=make_writable)

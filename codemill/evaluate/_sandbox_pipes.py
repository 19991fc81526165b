"""The evaluator's side of one sandboxed run: read its three pipes with caps and a deadline,
kill what is left past the deadline, and remove its working directory."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import stat
import time


def tail(text: str) -> str:
    """The last line of some output, as a short parenthesised note (or nothing)."""
    last = text.strip().splitlines()[-1:] if text.strip() else []
    return f" ({last[0][:200]})" if last else ""


def events(data: bytes) -> list[dict]:
    """The JSON events the outer process wrote on the control pipe."""
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


def communicate(fds: list[int], out: Capture, budget: float) -> None:
    """Read stdout, stderr and the control pipe until all are closed (the sample's processes
    are gone); past the deadline, kill them (the outer process reported their pids)."""
    deadline = time.monotonic() + budget
    sel = selectors.DefaultSelector()
    for stream, fd in enumerate(fds, start=1):
        sel.register(fd, selectors.EVENT_READ, stream % 3)  # 1 stdout, 2 stderr, 0 control
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0 and out.killed:
                break  # still open after the kill: a process outside our reach holds them; stop reading
            if remaining <= 0:
                out.killed = True
                kill(events(out.ctl))
                deadline = time.monotonic() + 5.0  # the pipes close once the processes are gone
                continue
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                elif key.data == 0:
                    out.ctl += chunk
                else:
                    out.add(key.data, chunk)
                    if out.exceeded:  # stop listening: the sample's further writes fail (EPIPE)
                        for fd in fds[:2]:
                            if fd in sel.get_map():
                                sel.unregister(fd)
    finally:
        sel.close()
        for fd in fds:
            os.close(fd)


def kill(reported: list[dict]) -> None:
    """Backstop when the outer process missed its own deadline: kill the sample's PID 1, then
    the outer process's group. The control pipe is still open, so the outer process is alive
    and has not reaped PID 1: neither pid can have been reused."""
    started = next((e for e in reported if e.get("event") == "started"), None)
    if started is None:
        return
    for send, pid in ((os.kill, started["pid"]), (os.killpg, started["outer_pid"])):
        if pid is None:  # calls mode: the outer process restarts inner processes, so only its group is named
            continue
        try:
            send(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


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

    shutil.rmtree(path, onerror=make_writable)

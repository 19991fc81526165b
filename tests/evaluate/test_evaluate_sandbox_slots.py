"""The fork server's slots: at most ``slots`` samples run at once, later jobs wait in its
queue, and a queued job's clocks (wall-clock limit, per-call deadlines) start only when
its process does."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

import pytest

from codemill.evaluate._sandbox_pipes import Capture
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.verify import run_calls

SPAN = "import time, json\nstart = time.time()\ntime.sleep({sleep})\nprint(json.dumps([start, time.time()]))\n"


def _concurrently(fn, count: int) -> list:
    results: list = [None] * count

    def one(i: int) -> None:
        results[i] = fn(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _spans(sb: Sandbox, count: int, sleep: float) -> list[tuple[float, float]]:
    runs = _concurrently(lambda _: sb.run(SPAN.format(sleep=sleep), mode="stdio"), count)
    assert all(r.passed for r in runs), [r.result for r in runs]
    return sorted(tuple(json.loads(r.stdout)) for r in runs)


def _overlapping(spans: list[tuple[float, float]]) -> bool:
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


@pytest.mark.parametrize("slots", [1, 0])
def test_slots_bound_how_many_samples_run_at_once(slots):
    with Sandbox(Limits(timeout=5.0), slots=slots) as sb:
        spans = _spans(sb, 3, 0.4)
    assert _overlapping(spans) == (slots == 0), spans


def test_a_queued_sample_gets_its_whole_time_limit():
    # Each run alone fits in the 1.5 s limit; back to back they would not: the second's
    # limit must start when it starts, not when it was handed to the queue.
    with Sandbox(Limits(timeout=1.5), slots=1) as sb:
        runs = _concurrently(lambda i: sb.run(SPAN.format(sleep=1.0 if i == 0 else 0.8), mode="stdio"), 2)
    assert [r.result for r in runs] == ["completed", "completed"]


def test_a_queued_call_run_gets_its_whole_time_limit():
    source = "import time\ndef f(x):\n    time.sleep(x)\n    return x\n"
    with Sandbox(Limits(timeout=1.5), slots=1) as sb:
        results = _concurrently(lambda i: run_calls(source, "f", ["0.5", "0.5"], 1.5, sandbox=sb), 2)
    assert [[r.status for r in calls] for calls in results] == [["ok", "ok"], ["ok", "ok"]]


def test_a_job_stopped_while_queued_never_runs():
    with Sandbox(Limits(timeout=3.0), slots=1) as sb:
        workdir = tempfile.mkdtemp(dir=sb.root)
        if sb.as_root:
            os.chown(workdir, sb.uid, sb.gid)
        job = {
            "mode": "stdio",
            "nonce": "0",
            "uid": sb.uid,
            "gid": sb.gid,
            "workdir": workdir,
            "require_isolation": False,
            "limits": {"timeout": 3.0, "memory_mb": 256, "fsize_mb": 1, "nofile": 64, "nproc": 8},
        }
        busy = sb.start_job(job, "import time\ntime.sleep(1.0)\n")  # takes the one slot
        queued = sb.start_job(job, "print('ran')\n")
        queued.kill()
        out = Capture(1024, 1024, 1 << 20)
        queued.read(out, 5.0)
        busy.read(Capture(1024, 1024, 1 << 20), 5.0)
    end = queued.event("exit")
    assert end is not None and end.get("setup_error") == "stopped before it started", queued.ctl
    assert queued.event("started") is None and out.text(1) == ""
    assert busy.event("exit") == {"event": "exit", "timed_out": False, "exit_code": 0}


def test_a_job_queued_longer_than_the_backstop_still_runs(monkeypatch):
    # The evaluator's backstop counts from the process's start: six 0.3 s jobs through one
    # slot wait up to 1.5 s, past a 0.4 s limit plus a 0.5 s grace.
    from codemill.evaluate import sandbox as module

    monkeypatch.setattr(module, "STARTUP_GRACE", 0.5)
    with Sandbox(Limits(timeout=0.4), slots=1) as sb:
        runs = _concurrently(lambda _: sb.run("import time\ntime.sleep(0.3)\n", mode="stdio"), 6)
    assert [r.result for r in runs] == ["completed"] * 6


def test_a_restarted_call_process_waits_for_its_slot_off_the_clock():
    # Call 0 crashes after 0.3 s; its restart queues behind three 0.9 s runs (2.7 s, more
    # than the 2 s limit) and must still get what is left of the limit once it starts.
    source = "import os, time\ndef f(x):\n    if x == 0:\n        time.sleep(0.3)\n        os._exit(3)\n    return x\n"
    with Sandbox(Limits(timeout=2.0), slots=1) as sb:
        out: dict = {}
        calls = threading.Thread(target=lambda: out.update(r=run_calls(source, "f", ["0", "1", "2"], 2.0, sandbox=sb)))
        calls.start()
        time.sleep(0.1)  # its first process has the slot
        others = _concurrently(lambda _: sb.run("import time\ntime.sleep(0.9)\n", mode="stdio"), 3)
        calls.join()
    assert [r.result for r in others] == ["completed"] * 3
    assert [(r.status, r.value) for r in out["r"]] == [("crashed", None), ("ok", 1), ("ok", 2)]


def test_the_next_job_is_set_up_while_the_slots_are_busy():
    # A queued job's process is forked and set up ahead (its setup report arrives while the
    # one slot is busy), but it starts, and its clock runs, only once the slot is free.
    import select

    from codemill.evaluate._sandbox_pipes import Job

    with Sandbox(Limits(timeout=3.0), slots=1) as sb:
        job = {
            "mode": "stdio",
            "nonce": "0",
            "uid": sb.uid,
            "gid": sb.gid,
            "workdir": sb.root,
            "require_isolation": False,
            "limits": {"timeout": 3.0, "memory_mb": 256, "fsize_mb": 1, "nofile": 64, "nproc": 8},
        }
        workdirs = [tempfile.mkdtemp(dir=sb.root) for _ in range(2)]
        for workdir in workdirs:
            if sb.as_root:
                os.chown(workdir, sb.uid, sb.gid)
        busy = sb.start_job(dict(job, workdir=workdirs[0]), "import time\ntime.sleep(1.0)\n")
        queued = sb.start_job(dict(job, workdir=workdirs[1]), "print('ran')\n")
        setup_ready = select.select([queued.fds[Job.DONE]], [], [], 0.8)[0]  # its setup line
        started_early = select.select([queued.fds[Job.CONTROL]], [], [], 0)[0]  # no "started" yet
        out = Capture(1024, 1024, 1 << 20)
        queued.read(out, 5.0)
        busy.read(Capture(1024, 1024, 1 << 20), 5.0)
    assert setup_ready and not started_early
    assert out.text(1) == "ran\n" and queued.event("exit")["exit_code"] == 0

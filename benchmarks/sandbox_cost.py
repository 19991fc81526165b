"""Where a sandboxed HumanEval sample's CPU goes: the evaluator, the fork server, its zygote,
and the samples' own processes, one sample at a time or ``--workers`` at once.

    .venv/bin/python benchmarks/sandbox_cost.py --rounds 3
    .venv/bin/python benchmarks/sandbox_cost.py --rounds 3 --workers 2

Scores every canonical solution ``--rounds`` times through ``benchmarks.judge`` (call and
check modes, every layer on) in one started sandbox (``slots=--workers``, as eval-score
runs it, with twice as many threads submitting) and reads the CPU time of each part:
this process (``time.process_time``), the server and the zygote (``/proc/PID/stat``
utime+stime) and the server's reaped children (cutime+cstime: the sample processes), plus
the page faults of those children per sample, and how busy the machine's CPUs were
(``/proc/stat``). With one worker it then prints the problems whose samples cost the most
CPU: their solutions' own work, the same under any harness. The counters tick at the
kernel's clock rate (100 Hz here), so use enough rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from codemill.evaluate import humaneval
from codemill.evaluate.benchmarks import judge
from codemill.evaluate.sandbox import Limits, Sandbox, run_parallel

TICK = os.sysconf("SC_CLK_TCK")


def stat(pid: int) -> tuple[str, list[str]]:
    """A process's name (with its opening parenthesis) and the fields after it in /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        name, rest = f.read().rsplit(")", 1)
    return name, rest.split()


def times(pid: int) -> dict[str, float]:
    """CPU seconds of a process and of its reaped children, and the children's minor faults."""
    fields = stat(pid)[1]
    return {
        "self": (int(fields[11]) + int(fields[12])) / TICK,
        "children": (int(fields[13]) + int(fields[14])) / TICK,
        "children_faults": int(fields[8]),
    }


def zygote_of(server: int) -> int:
    for entry in os.listdir("/proc"):
        try:
            name, fields = stat(int(entry)) if entry.isdigit() else ("", [])
        except OSError:  # ended while we looked
            continue
        if name.endswith("(sandbox-zygote") and int(fields[1]) == server:
            return int(entry)
    raise SystemExit("no zygote found under the sandbox server")


def cpu_ticks() -> tuple[int, int]:
    """All CPU ticks and idle ticks (idle + iowait) since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slowest", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="samples at once (the sandbox's slots)")
    args = parser.parse_args()
    tasks = humaneval.load_tasks()
    per_task: dict[str, float] = {t.task_id: 0.0 for t in tasks}

    def one(task) -> None:
        before = times(server)["children"] if args.workers == 1 else 0.0
        passed, detail = judge(sb, task, task.reference)
        assert passed, (task.task_id, detail)
        if args.workers == 1:
            per_task[task.task_id] += times(server)["children"] - before

    with Sandbox(Limits(timeout=3.0), slots=args.workers) as sb:
        sb.run("pass\n")
        server = sb._server.pid
        zygote = zygote_of(server)
        s0, z0, e0, w0, c0 = times(server), times(zygote), time.process_time(), time.perf_counter(), cpu_ticks()
        if args.workers == 1:
            for _ in range(args.rounds):
                for task in tasks:
                    one(task)
        else:
            run_parallel(one, tasks * args.rounds, 2 * args.workers, "samples")
        s1, z1, e1, w1, c1 = times(server), times(zygote), time.process_time(), time.perf_counter(), cpu_ticks()
    n = args.rounds * len(tasks)
    busy = 1 - (c1[1] - c0[1]) / max(1, c1[0] - c0[0])
    ms = {
        "wall": (w1 - w0) / n * 1e3,
        "evaluator": (e1 - e0) / n * 1e3,
        "server": (s1["self"] - s0["self"]) / n * 1e3,
        "zygote": (z1["self"] - z0["self"]) / n * 1e3,
        "sample_processes": (s1["children"] - s0["children"]) / n * 1e3,
    }
    faults = (s1["children_faults"] - s0["children_faults"]) / n
    print(f"{n} samples, {args.workers} at a time; ms of CPU per sample (wall: ms per sample):")
    print("\n| part | ms per sample |\n|---|---:|")
    for part, value in ms.items():
        print(f"| {part} | {value:.2f} |")
    print(f"\nsample processes' page faults per sample: {faults:.0f}; CPUs busy: {busy:.0%}")
    if args.workers == 1:
        print(f"\nslowest problems (ms of sample-process CPU per sample, {args.rounds} rounds):")
        for task_id, seconds in sorted(per_task.items(), key=lambda kv: -kv[1])[: args.slowest]:
            print(f"  {task_id}: {seconds / args.rounds * 1e3:.0f}")
    print(json.dumps({"ms_per_sample": ms, "faults_per_sample": faults, "busy": busy, "workers": args.workers}))


if __name__ == "__main__":
    main()

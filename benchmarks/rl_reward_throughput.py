"""Executions per second of rl's reward path: the warm sandbox (one fork server, a thread
pool in flight) against starting a fresh interpreter per completion.

Workload: the 13 bundled stdin/stdout problems (codemill/evaluate/data), each with its
reference solution and a wrong program, repeated ``--rounds`` times; every test case is one
execution. Three ways, same completions, same verdicts checked:

- ``warm``: :class:`codemill.rl.reward.Rewarder` (what ``codemill rl`` runs): one started
  sandbox, ``--workers`` completions in flight;
- ``service``: the same through ``codemill sandbox serve`` on localhost (``--sandbox-url``),
  one request per batch, one sample per completion (all of its test cases run);
- ``cold-sandbox``: a new :class:`Sandbox` (its own fork server, probe run, same isolation)
  started for every completion;
- ``bare-interpreter``: ``subprocess.run([python, "-c", program])`` per test case with no
  isolation at all (what a naive local reward function does; a lower bound on start-up cost,
  not something rl may use: untrusted code never runs outside the sandbox).

    .venv/bin/python benchmarks/rl_reward_throughput.py --rounds 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill.evaluate import stdio  # noqa: E402
from codemill.evaluate.metric import stdout_matches  # noqa: E402
from codemill.evaluate.sandbox import Sandbox  # noqa: E402
from codemill.rl import data  # noqa: E402
from codemill.rl.config import RLConfig  # noqa: E402
from codemill.rl.reward import Rewarder, score_problem  # noqa: E402

WRONG = "print(0)\n"


def workload(rounds: int):
    loaded, _ = data.load(RLConfig(decontaminate=[]), None)
    with open(stdio.SHIPPED_SOLUTIONS, encoding="utf-8") as f:
        solutions = {row["task_id"]: row["completion"] for row in map(json.loads, f)}
    items = [(t, c) for t in loaded.train for c in (solutions[t.task_id], WRONG)] * rounds
    return [t for t, _ in items], [c for _, c in items]


def warm(tasks, completions, workers: int):
    with Rewarder(workers=workers) as rewarder:
        rewarder.score(tasks[:2], completions[:2])  # start-up is paid once per run, not per step
        start = time.perf_counter()
        scores = rewarder.score(tasks, completions)
    return scores, time.perf_counter() - start


def service(tasks, completions, workers: int):
    """The same batch through ``codemill sandbox serve`` on 127.0.0.1 (one request per step)."""
    from codemill.verify.server import ServerConfig, serve

    os.environ["CODEMILL_SANDBOX_API_KEY"] = "bench"
    servers = []
    with Sandbox() as box:
        serve(ServerConfig(api_key="bench", workers=workers, timeout=5.0), box, "127.0.0.1", 0, ready=servers.append)
        url = "http://%s:%d" % servers[0].server_address[:2]
        with Rewarder(workers=workers, sandbox_url=url) as rewarder:
            rewarder.score(tasks[:2], completions[:2])
            start = time.perf_counter()
            scores = rewarder.score(tasks, completions)
            seconds = time.perf_counter() - start
        servers[0].shutdown()
    return scores, seconds


def cold_sandbox(tasks, completions):
    start = time.perf_counter()
    scores = []
    for t, c in zip(tasks, completions):
        with Sandbox() as box:
            scores.append(score_problem(box, t, c, chat=False))
    return scores, time.perf_counter() - start


def bare(tasks, completions):
    start = time.perf_counter()
    passed = []
    for t, c in zip(tasks, completions):
        ok = 0
        for given, expected in t.problem.cases:
            run = subprocess.run(
                [sys.executable, "-c", t.problem.prompt + c], input=given, capture_output=True, text=True, timeout=10
            )
            ok += run.returncode == 0 and stdout_matches(run.stdout, expected)
        passed.append(ok == len(t.problem.cases))
    return passed, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cold-limit", type=int, default=8, help="completions for the (slow) cold-sandbox way")
    args = ap.parse_args()
    tasks, completions = workload(args.rounds)
    executions = sum(len(t.problem.cases) for t in tasks)
    scores, warm_s = warm(tasks, completions, args.workers)
    remote, service_s = service(tasks, completions, args.workers)
    cold, cold_s = cold_sandbox(tasks[: args.cold_limit], completions[: args.cold_limit])
    cold_exec = sum(len(t.problem.cases) for t in tasks[: args.cold_limit])
    bare_passed, bare_s = bare(tasks, completions)
    assert [s.passed for s in scores] == bare_passed == [s.passed for s in remote]
    assert [s.passed for s in cold] == bare_passed[: args.cold_limit]
    out = {
        "completions": len(tasks),
        "executions": executions,
        "workers": args.workers,
        "warm_executions_per_s": round(executions / warm_s, 1),
        "service_executions_per_s": round(executions / service_s, 1),
        "cold_sandbox_executions_per_s": round(cold_exec / cold_s, 1),
        "bare_interpreter_executions_per_s": round(executions / bare_s, 1),
        "warm_vs_cold_sandbox": round((executions / warm_s) / (cold_exec / cold_s), 1),
        "passed": sum(s.passed for s in scores),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

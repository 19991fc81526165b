"""Throughput of the tasks stage on the site-packages corpus: candidates/s, tasks/s, and the
share of the time spent running references in the sandbox.

    .venv/bin/python benchmarks/tasks_throughput.py --max-repos 40

Validates ``--max-repos`` site-packages distributions into a temporary folder (not timed),
then runs ``tasks-shard`` and ``tasks-finish`` through the step runner, one shard, tracking
off. Reports the wall time of each phase of the shard (reading Parquet, the static phase:
parsing, references, screen, decontamination, inputs; the sandboxed runs), the process's
CPU seconds (``time.process_time``: the sandboxed processes are children and not in it),
and the peak resident memory of this process (``ru_maxrss``: bounded by the shard's
Python text and its parsed trees). Prints a Markdown table for docs/tasks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time

from codemill import runner
from codemill.tasks import TasksConfig
from codemill.validate import ValidateConfig, run_shard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-repos", type=int, default=40, help="site-packages distributions (0 = all)")
    parser.add_argument("--workers", type=int, default=0, help="sandboxed runs in parallel (0 = the CPUs)")
    parser.add_argument("--input", default="", help="an existing validate/dedup output to use instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codemill-tasks-bench-") as tmp:
        source = args.input
        if not source:
            source = os.path.join(tmp, "validate")
            run_shard(ValidateConfig(max_repos=args.max_repos), "site-packages", source, 0, 1)
        config = TasksConfig(workers=args.workers)
        wall, cpu = time.perf_counter(), time.process_time()
        shard = runner.run("tasks-shard", config, output=os.path.join(tmp, "tasks"), input=source)
        stats = runner.run("tasks-finish", config, output=os.path.join(tmp, "tasks"))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timing = shard["timing"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("repositories / Python files", f"{stats['repos']} / {stats['python_files']}"),
        (
            "candidates / run in the sandbox / with cases / kept after dedup",
            f"{stats['candidates']} / "
            f"{stats['functions_run']} / {stats['functions_executed']} / {stats['functions_kept']}",
        ),
        ("tasks (by kind)", f"{stats['tasks']} ({', '.join(f'{k} {v}' for k, v in stats['by_kind'].items())})"),
        (
            "wall seconds: total / read / static / sandbox phase",
            f"{wall:.1f} / {timing['read_seconds']:.1f} / "
            f"{timing['static_seconds']:.1f} / {timing['execute_seconds']:.1f}",
        ),
        ("share of wall time in the sandbox phase", f"{timing['execute_seconds'] / wall:.1%}"),
        (
            "sandboxed reference seconds (summed over workers)",
            f"{timing['sandbox_seconds']:.1f} ({timing['workers']} workers)",
        ),
        ("candidates/s (wall)", f"{stats['candidates'] / wall:.0f}"),
        ("tasks/s (wall)", f"{stats['tasks'] / wall:.2f}"),
        ("CPU seconds of this process (static phase, without the sandboxes)", f"{cpu:.1f}"),
        ("peak RSS of this process", f"{peak_mb:.0f} MB"),
    ]
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"--max-repos {args.max_repos}\n"
    )
    print("| measure | value |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        f"\nby_reason: {stats['by_reason']}\nby_split: {stats['by_split']}; examples_disagreeing: "
        f"{stats['examples_disagreeing']}; generate_skipped_wrong_doctest: {stats['generate_skipped_wrong_doctest']}"
    )


if __name__ == "__main__":
    main()

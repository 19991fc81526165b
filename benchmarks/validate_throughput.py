"""Throughput of the validate stage on the site-packages corpus, in MB/s per core.

    .venv/bin/python benchmarks/validate_throughput.py --max-repos 40 --repeat 3

One process, one shard (``world_size=1``), tracking off. Two measurements:

1. end to end: ``run_shard`` (listing site-packages, reading, checking, writing Parquet),
   input bytes / seconds, wall-clock and CPU (``time.process_time``, i.e. per core);
2. per step, on the candidates already in memory: reading excluded, each step of
   ``Checker.check`` timed alone over the same texts (quality filters, n-gram
   decontamination, secret redaction), CPU MB/s of the bytes it looked at.

Best of ``--repeat`` runs (other processes share the machine; the minimum is the least
disturbed run). Prints a Markdown table for docs/validate.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

from codemill.tracking import NoOpTracker
from codemill.validate import ValidateConfig, run_shard
from codemill.validate.checks import Checker, _decode
from codemill.validate.filters import quality_problem
from codemill.validate.languages import language_of_path
from codemill.validate.secrets import redact
from codemill.validate.sources import SourceInfo, read_source
from codemill.validate.steps import build_decontaminator


def best_of(repeat: int, fn) -> tuple[float, float]:
    """(wall, cpu) seconds of the fastest of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def end_to_end(config: ValidateConfig, repeat: int) -> tuple[dict, float, float]:
    stats: dict = {}

    def once():
        with tempfile.TemporaryDirectory() as out:
            stats.update(run_shard(config, "site-packages", out, 0, 1, NoOpTracker()))

    wall, cpu = best_of(repeat, once)
    return stats, wall, cpu


def per_step(config: ValidateConfig, repeat: int) -> list[tuple[str, int, float]]:
    candidates = list(read_source("site-packages", config, 0, 1, SourceInfo()))
    checker = Checker(config, build_decontaminator(config))
    texts = []
    for c in candidates:
        text, problem = _decode(c.data) if c.data and not c.problem else ("", ("skip", ""))
        if not problem and len(c.data) <= config.max_file_bytes:
            texts.append((c.path, language_of_path(c.path) or "python", text))
    size = sum(len(t.encode()) for _, _, t in texts)
    steps = [
        (
            "Checker.check (all checks + redaction)",
            sum(c.size or 0 for c in candidates),
            lambda: [checker.check(c) for c in candidates],
        ),
        ("quality filters", size, lambda: [quality_problem(t, p, lang, config) for p, lang, t in texts]),
        ("decontamination (HumanEval n-grams)", size, lambda: [checker.decontaminator.find(t) for _, _, t in texts]),
        ("secret redaction", size, lambda: [redact(t) for _, _, t in texts]),
    ]
    return [(name, nbytes, best_of(repeat, fn)[1]) for name, nbytes, fn in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-repos", type=int, default=40, help="distributions to read (default: 40)")
    parser.add_argument(
        "--max-repo-bytes",
        type=int,
        default=ValidateConfig().max_repo_bytes,
        help="skip distributions larger than this (default: the stage default)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts (default: 3)")
    args = parser.parse_args()
    config = ValidateConfig(max_repos=args.max_repos, max_repo_bytes=args.max_repo_bytes)

    stats, wall, cpu = end_to_end(config, args.repeat)
    mb = stats["bytes_in"] / 1e6
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"corpus: site-packages, {stats['selection']['repos_picked']} distributions, {stats['input_records']} "
        f"files, {mb:.2f} MB in, {stats['bytes_kept'] / 1e6:.2f} MB kept\n"
    )
    print("| measurement | MB | seconds (CPU) | MB/s per core |")
    print("|---|---|---|---|")
    print(f"| run_shard end to end (wall {wall:.2f} s, {mb / wall:.2f} MB/s) | {mb:.2f} | {cpu:.2f} | {mb / cpu:.2f} |")
    for name, nbytes, seconds in per_step(config, args.repeat):
        print(f"| {name} | {nbytes / 1e6:.2f} | {seconds:.2f} | {nbytes / 1e6 / seconds:.2f} |")


if __name__ == "__main__":
    main()

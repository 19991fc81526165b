"""Throughput of synth's oss-instruct path against a local scripted teacher: answers/s with
the teacher, answers/s from the response cache (parsing + sandboxed tests + decontamination
+ dedup only), and the overhead a request adds.

    .venv/bin/python benchmarks/synth_throughput.py --samples 120 --delay 0.05

Seeds come from standard-library Python files (written as dedup's files/, not timed). The
scripted teacher (tests/synth/scripted.py) waits ``--delay`` seconds per request, like a fast
server, and answers every seed with its own correct problem, solution and tests (the
function name carries the seed's number, so nothing is a duplicate; about 1 in 8 answers
fails its tests so both verdicts are exercised). Run 1 asks the teacher; run 2, into the
same output folder, takes every answer from the cache. Prints a Markdown table for
docs/synth.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codemill import io  # noqa: E402
from codemill.cli import main as codemill  # noqa: E402
from tests.conftest import python_sources  # noqa: E402
from tests.synth.conftest import write_corpus  # noqa: E402
from tests.synth.scripted import Reply, ScriptedTeacher, answer  # noqa: E402


def respond(delay: float):
    def one(content: str, seed: int, attempt: int):
        n = zlib.crc32(content.encode()) % 1_000_000  # a name per seed snippet
        wrong = n % 8 == 0
        solution = f"def scale_{n}(xs, k):\n    return [x * k {'+ 1' if wrong else ''} for x in xs]\n"
        tests = f"assert scale_{n}([1, 2], 3) == [3, 6]\nassert scale_{n}([], 5) == []\n"
        problem = f"Write scale_{n}(xs, k), the list of every member of xs times k (task {n})."
        return Reply(content=answer(problem, solution, tests), delay=delay)

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=120)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds the scripted teacher waits per request")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = [
            (os.path.basename(p), "python", Path(p).read_text(encoding="utf-8", errors="replace"))
            for p in python_sources(60)
        ]
        corpus = write_corpus(Path(tmp) / "corpus", files)
        out = f"{tmp}/out"
        flags = [
            "synth",
            "--input",
            corpus,
            "--output",
            out,
            "--max-samples",
            str(args.samples),
            "--concurrency",
            str(args.concurrency),
            "--workers",
            str(args.workers),
            "--no-tracking",
        ]
        seconds = []
        with ScriptedTeacher(respond(args.delay)) as teacher:
            for _ in range(2):
                start = time.perf_counter()
                assert codemill([*flags, "--teacher-url", teacher.url]) == 0
                seconds.append(time.perf_counter() - start)
                stats = io.read_json(f"{out}/stats.json")
                print(
                    f"kept {stats['kept']} / {stats['answered']}, {stats['http_requests']} HTTP requests",
                    file=sys.stderr,
                )
    n = args.samples
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {n} answers, teacher delay "
        f"{args.delay}s, concurrency {args.concurrency}, {args.workers} sandbox workers\n"
    )
    print("| run | seconds | answers/s |\n|---|---|---|")
    print(f"| 1: teacher + checks | {seconds[0]:.1f} | {n / seconds[0]:.1f} |")
    print(f"| 2: cache + checks | {seconds[1]:.1f} | {n / seconds[1]:.1f} |")


if __name__ == "__main__":
    main()

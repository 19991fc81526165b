"""The ``tasks-shard`` step: one shard's repositories, from candidates to executed cases.

A shard owns the repositories whose name hashes to its rank (every input file is read,
only its repositories' Python rows kept: memory is bounded by the shard). For each of its
repositories in name order: parse every Python file, index the literal calls of the whole
repository, then take each candidate through the static checks (shape, names, screen,
decontamination, inputs) and run the survivors in the sandbox. Writes
``quarantine/<shard>.parquet`` (one row per rejected candidate) and
``_work/functions/<shard>.parquet`` (one row per function with cases, for the finish step,
which deduplicates across shards and makes the tasks).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter

import pyarrow as pa
from tqdm import tqdm

from codemill import io, runner, stage
from codemill.evaluate.config import cpu_budget
from codemill.tasks.config import TasksConfig
from codemill.tasks.execute import run_all
from codemill.tasks.functions import Candidate, link, parse_module
from codemill.tasks.inputs import CallIndex, doctest_examples, select
from codemill.tasks.screen import screen
from codemill.validate.decontam import Decontaminator, load_benchmarks

STAGE = "tasks"
NEEDED_COLUMNS = ("repo", "path", "content", "language")
EXAMPLES_KEPT = 20  # disagreeing examples kept in the stats (all are counted)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("entry_point", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)
FUNCTION_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("line", pa.int64()),
        ("entry_point", pa.string()),
        ("context", pa.large_string()),
        ("function", pa.large_string()),
        ("reference", pa.large_string()),
        ("stub", pa.large_string()),
        ("body", pa.large_string()),
        ("cases", pa.large_string()),
        ("doctest_disagrees", pa.bool_()),
    ]
)


def input_files(input: str) -> list[str]:
    """``<input>/files/*.parquet`` (dedup's or validate's output), or a Parquet URL or glob."""
    urls = (
        io.expand(input)
        if input.endswith(".parquet") or any(c in input for c in "*?[")
        else io.expand(io.join(input, "files", "*.parquet"))
    )
    if not urls:
        raise stage.InputError(
            f"{input}: no Parquet files found (expected dedup's or validate's output folder with files/*.parquet)"
        )
    for url in urls:
        missing = [c for c in NEEDED_COLUMNS if c not in io.parquet_schema(url).names]
        if missing:
            raise stage.InputError(f"{url}: missing column(s) {', '.join(missing)} (expected records.FILE_SCHEMA)")
    return urls


def owner(repo: str, world_size: int) -> int:
    return int.from_bytes(hashlib.sha256(repo.encode("utf-8")).digest()[:8], "big") % world_size


def read_repositories(urls: list[str], rank: int, world_size: int) -> tuple[dict[str, list[tuple[str, str]]], int]:
    """This shard's repositories -> their Python files (path, content), and the rows read."""
    repos: dict[str, list[tuple[str, str]]] = {}
    rows = 0
    for url in urls:
        for batch in io.iter_parquet_batches(url, columns=list(NEEDED_COLUMNS), batch_size=512):
            cols = [batch.column(i).to_pylist() for i in range(len(NEEDED_COLUMNS))]
            for repo, path, content, language in zip(*cols):
                rows += 1
                if (
                    repo
                    and path
                    and content
                    and (language or "").lower() == "python"
                    and owner(repo, world_size) == rank
                ):
                    repos.setdefault(repo, []).append((path, content))
    return {r: sorted(files) for r, files in sorted(repos.items())}, rows


def build_decontaminator(config: TasksConfig) -> Decontaminator | None:
    if not config.decontam_paths:
        return None
    texts = load_benchmarks(config.decontam_paths, config.decontam_fields)
    return Decontaminator(texts, ngram=config.decontam_ngram, min_tokens=config.decontam_min_tokens)


class Shard:
    """Counts and rows of one shard."""

    def __init__(self, config: TasksConfig):
        self.config = config
        self.decontam = build_decontaminator(config)
        self.counts: Counter = Counter()
        self.by_reason: Counter = Counter()
        self.quarantine: list[dict] = []
        self.functions: list[dict] = []
        self.work: list[tuple[Candidate, list]] = []
        self.disagreeing: list[dict] = []
        self.sandbox_seconds = 0.0

    def reject(self, cand: Candidate, reason: str, detail: str) -> None:
        self.by_reason[reason] += 1
        self.quarantine.append(
            {
                "entry_point": cand.entry_point,
                "repo": cand.repo,
                "path": cand.path,
                "line": cand.line,
                "reason": reason,
                "detail": detail,
            }
        )

    def add_repository(self, repo: str, files: list[tuple[str, str]]) -> None:
        modules = []
        for path, content in files:
            module = parse_module(repo, path, content)
            self.counts["python_files"] += 1
            if module is None:
                self.counts["files_unparsable"] += 1
                continue
            modules.append(module)
        link(modules)  # names imported from the repository's own modules resolve to their definitions
        candidates = [cand for module in modules for cand in module.candidates()]
        index = CallIndex(self.config.max_input_chars, {c.entry_point for c in candidates if not c.reason})
        for module in modules:
            index.add_module(module.path, module.tree, module.text)
        for cand in candidates:
            self.counts["candidates"] += 1
            self._check(cand, index)

    def _check(self, cand: Candidate, index: CallIndex) -> None:
        if cand.reason:
            return self.reject(cand, cand.reason, cand.detail)
        why = screen(cand.reference)
        if why:
            return self.reject(cand, "impure", why)
        hit = self.decontam.find(cand.reference) if self.decontam else None
        if hit:
            return self.reject(cand, "contaminated", f"{hit[0]}: shares {hit[1][:120]!r}")
        examples = select(
            doctest_examples(cand.docstring, cand.entry_point, self.config.max_input_chars),
            index.examples(cand.entry_point),
            self.config.max_cases,
        )
        if not examples:
            return self.reject(cand, "no_inputs", "no doctest example or literal call of it in the repository")
        self.work.append((cand, examples))

    def execute(self, workers: int) -> None:
        items = [(cand.reference, cand.entry_point, examples) for cand, examples in self.work]
        self.counts["functions_run"] += len(items)
        for (cand, _), outcome in zip(self.work, run_all(self.config, items, workers)):
            self.sandbox_seconds += outcome.seconds
            self.counts["examples_disagreeing"] += len(outcome.disagreeing)
            self.disagreeing += [
                {"repo": cand.repo, "entry_point": cand.entry_point, **d} for d in outcome.disagreeing
            ][: EXAMPLES_KEPT - len(self.disagreeing)]
            if outcome.reason:
                self.reject(cand, outcome.reason, outcome.detail)
                continue
            self.counts["cases"] += len(outcome.cases)
            self.functions.append(
                {
                    "key": cand.key,
                    "repo": cand.repo,
                    "path": cand.path,
                    "line": cand.line,
                    "entry_point": cand.entry_point,
                    "context": cand.context,
                    "function": cand.function,
                    "reference": cand.reference,
                    "stub": cand.stub,
                    "body": cand.body,
                    "cases": json.dumps(outcome.cases, ensure_ascii=False),
                    "doctest_disagrees": any(d["origin"] == "doctest" for d in outcome.disagreeing),
                }
            )
        self.work = []


def write_rows(rows: list[dict], schema: pa.Schema, url: str, keep_empty: bool = False) -> None:
    """Write rows as Parquet; an empty table is not written unless asked for, because
    ``datasets.load_dataset("parquet", ...)`` fails on a file with no rows."""
    if rows or keep_empty:
        io.write_parquet(pa.Table.from_pylist(rows, schema=schema), url)


def shard_url(output: str, folder: str, rank: int, world_size: int) -> str:
    return io.join(output, folder, f"{stage.shard_name(rank, world_size)}.parquet")


def shard_step(config: TasksConfig, ctx: runner.Context) -> dict:
    source, output, rank, world_size = ctx.input("input"), ctx.output, ctx.rank, ctx.world_size
    urls = input_files(source)
    shard = Shard(config)
    workers = config.workers or cpu_budget()
    with stage.Timer() as timer:
        with stage.Timer() as reading:
            repos, rows = read_repositories(urls, rank, world_size)
        with stage.Timer() as static:
            desc = f"tasks {stage.shard_name(rank, world_size)}: candidates"
            for repo, files in tqdm(repos.items(), desc=desc, unit=" repo", file=sys.stderr, mininterval=1.0):
                shard.add_repository(repo, files)
        with stage.Timer() as executing:
            shard.execute(workers)
    write_rows(shard.quarantine, QUARANTINE_SCHEMA, shard_url(output, "quarantine", rank, world_size))
    io.write_parquet(
        pa.Table.from_pylist(shard.functions, schema=FUNCTION_SCHEMA),
        shard_url(output, "_work/functions", rank, world_size),
    )
    counts = shard.counts
    stats = {
        "input": source,
        "rank": rank,
        "world_size": world_size,
        "input_rows": rows,
        "repos": len(repos),
        "python_files": counts["python_files"],
        "files_unparsable": counts["files_unparsable"],
        "candidates": counts["candidates"],
        "quarantined": len(shard.quarantine),
        "functions_run": counts["functions_run"],
        "functions_executed": len(shard.functions),
        "cases": counts["cases"],
        "by_reason": dict(sorted(shard.by_reason.items())),
        "examples_disagreeing": counts["examples_disagreeing"],
        "disagreeing_examples": shard.disagreeing,
        # wall seconds of each phase; sandbox_seconds sums the references' runs over the workers
        "timing": {
            "seconds": round(timer.seconds, 3),
            "read_seconds": round(reading.seconds, 3),
            "static_seconds": round(static.seconds, 3),
            "execute_seconds": round(executing.seconds, 3),
            "sandbox_seconds": round(shard.sandbox_seconds, 3),
            "workers": workers,
        },
    }
    if stats["candidates"] != stats["quarantined"] + stats["functions_executed"]:
        raise RuntimeError(
            f"{output}: tasks {ctx.shard}: {stats['candidates']} candidates but "
            f"{stats['quarantined']} quarantined + {stats['functions_executed']} kept"
        )
    print(
        f"[tasks] {ctx.shard}: {len(repos)} repositories, {stats['candidates']} candidates, "
        f"{stats['functions_executed']} functions with cases, {stats['quarantined']} quarantined",
        flush=True,
    )
    ctx.tracker.log_metrics(stage.numeric_metrics({k: v for k, v in stats.items() if k not in ("rank", "world_size")}))
    return stats

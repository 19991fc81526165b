"""run_shard and finish: the validate stage over one shard, then the merge.

A shard reads its part of the source, checks every candidate, writes
``files/<shard>.parquet`` (kept, sorted by repo and path) and
``quarantine/<shard>.parquet``, then its completion marker holding its stats and config.
Records are counted as they are read, apart from where they end up; a shard whose count
differs from ``kept + quarantined`` raises :class:`InvariantError` before its marker is
written. Retries are the step runner's (:mod:`codemill.runner`): a shard that finds its
marker returns those stats without reading anything when the marker's config is the
current one, and fails naming the settings that differ otherwise. ``finish``
merges the shard stats, counts the rows actually written, checks
``input_records == kept + quarantined`` (and that the files agree), writes
``stats.json`` and ``report.md``, and raises if the invariant does not hold.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from codemill import io, runner, stage
from codemill.records import FILE_SCHEMA, QUARANTINE_SCHEMA, FileRecord, QuarantineRecord, to_table
from codemill.tracking import Tracker
from codemill.validate.checks import Checker
from codemill.validate.config import ValidateConfig
from codemill.validate.decontam import Decontaminator, load_benchmarks
from codemill.validate.report import render_report
from codemill.validate.sources import SourceInfo, read_source

STAGE = "validate"
EXAMPLES_PER_REASON = 3
RECORD_COUNTERS = ("by_reason", "redactions", "languages", "language_bytes", "contaminated_tasks")
COUNTERS = RECORD_COUNTERS + ("skipped_files",)  # skipped files are counted while listing the source


class InvariantError(RuntimeError):
    """input_records != kept + quarantined: a record was lost or counted twice."""


def shard_url(output: str, folder: str, rank: int, world_size: int) -> str:
    return io.join(output, folder, f"{stage.shard_name(rank, world_size)}.parquet")


def build_decontaminator(config: ValidateConfig) -> Decontaminator:
    texts = load_benchmarks(config.decontam_paths, config.decontam_fields) if config.decontam_paths else []
    return Decontaminator(texts, ngram=config.decontam_ngram, min_tokens=config.decontam_min_tokens)


class Tally:
    """Counts of one shard, kept alongside the records themselves."""

    def __init__(self):
        self.read = 0  # candidate records read, counted before any check
        self.kept: list[FileRecord] = []
        self.quarantined: list[QuarantineRecord] = []
        self.counters = {name: Counter() for name in RECORD_COUNTERS}
        self.bytes_in = 0
        self.files_redacted = 0
        self.examples: dict[str, list[dict]] = {}

    def count_read(self) -> None:
        self.read += 1

    def add(self, size: int, outcome: FileRecord | QuarantineRecord, redactions: dict[str, int]) -> None:
        self.bytes_in += size
        if isinstance(outcome, FileRecord):
            self.kept.append(outcome)
            self.counters["languages"][outcome.language] += 1
            self.counters["language_bytes"][outcome.language] += outcome.size
            self.counters["redactions"].update(redactions)
            self.files_redacted += bool(redactions)
            return
        self.quarantined.append(outcome)
        self.counters["by_reason"][outcome.reason] += 1
        if outcome.reason == "contaminated":
            self.counters["contaminated_tasks"][outcome.detail.split(": shares ", 1)[0]] += 1
        examples = self.examples.setdefault(outcome.reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append({"source": outcome.source, "detail": outcome.detail})

    def stats(self) -> dict:
        return {
            "input_records": self.read,
            "kept": len(self.kept),
            "quarantined": len(self.quarantined),
            "bytes_in": self.bytes_in,
            "bytes_kept": sum(r.size for r in self.kept),
            "files_redacted": self.files_redacted,
            **{name: dict(sorted(c.items())) for name, c in self.counters.items()},
            "examples": self.examples,
        }


def run_shard(
    config: ValidateConfig, source: str, output: str, rank: int, world_size: int, tracker: Tracker | None = None
) -> dict:
    """Validate one shard of ``source`` into ``output``; returns the shard's stats."""
    return runner.run(
        "validate-shard", config, output=output, rank=rank, world_size=world_size, tracker=tracker, source=source
    )


def shard_step(config: ValidateConfig, ctx: runner.Context) -> dict:
    source, output, rank, world_size, tracker = ctx.input("source"), ctx.output, ctx.rank, ctx.world_size, ctx.tracker
    checker = Checker(config, build_decontaminator(config))
    info = SourceInfo()
    tally = Tally()
    with stage.Timer() as timer:
        candidates = read_source(source, config, rank, world_size, info)
        desc = f"validate {stage.shard_name(rank, world_size)}"
        for candidate in tqdm(candidates, desc=desc, unit=" files", file=sys.stderr, mininterval=1.0):
            tally.count_read()
            outcome, redactions = checker.check(candidate)
            tally.add(candidate.size or 0, outcome, redactions)
        _check_counts(output, rank, world_size, tally)
        _write_shard(output, rank, world_size, tally)
    stats = {
        "rank": rank,
        "world_size": world_size,
        "source": source,
        "source_kind": info.kind,
        **tally.stats(),
        "skipped_files": dict(sorted((info.skipped_files or {}).items())),
        "selection": info.selection,
        "config": stage.config_dict(config),
    }
    print(
        f"[validate] {stage.shard_name(rank, world_size)}: {stats['input_records']} records, "
        f"{stats['kept']} kept, {stats['quarantined']} quarantined, "
        f"{stats['bytes_in'] / 1e6 / max(timer.seconds, 1e-9):.2f} MB/s",
        flush=True,
    )
    tracker.log_metrics({**_metrics(stats), "seconds": timer.seconds})
    return stats


def _check_counts(output: str, rank: int, world_size: int, tally: Tally) -> None:
    """Every record read went to exactly one place, or the shard fails (no marker is written)."""
    kept, quarantined = len(tally.kept), len(tally.quarantined)
    if tally.read != kept + quarantined:
        raise InvariantError(
            f"{output}: validate {stage.shard_name(rank, world_size)}: input_records={tally.read} but "
            f"kept={kept} + quarantined={quarantined}: a record was lost or counted twice"
        )


def _write_shard(output: str, rank: int, world_size: int, tally: Tally) -> None:
    kept = sorted(tally.kept, key=lambda r: (r.repo, r.path, r.source))
    held = sorted(tally.quarantined, key=lambda r: (r.repo or "", r.path or "", r.source))
    io.write_parquet(to_table(kept, FILE_SCHEMA), shard_url(output, "files", rank, world_size))
    io.write_parquet(to_table(held, QUARANTINE_SCHEMA), shard_url(output, "quarantine", rank, world_size))


def _metrics(stats: dict) -> dict[str, float]:
    scalars = {k: v for k, v in stats.items() if k not in ("config", "selection", "examples", "rank", "world_size")}
    return stage.numeric_metrics(scalars)


# ---------------------------------------------------------------------------- finish


@dataclass
class ValidateStats:
    """The stage's ``stats.json`` (docs/architecture.md). ``invariant_ok`` holds when every
    record read is kept or quarantined once and the rows written agree."""

    source: str
    source_kind: str
    shards: int
    input_records: int
    kept: int
    quarantined: int
    bytes_in: int
    bytes_kept: int
    files_redacted: int
    by_reason: dict[str, int]
    redactions: dict[str, int]
    languages: dict[str, int]
    language_bytes: dict[str, int]
    contaminated_tasks: dict[str, int]
    skipped_files: dict[str, int]
    examples: dict[str, list]
    selection: dict
    config: dict
    rows_written: dict[str, int] = field(default_factory=dict)
    invariant_ok: bool = False


def merge_stats(shards: list[dict]) -> ValidateStats:
    """The shards' stats merged (sums of counts; source, selection and config from shard 0)."""
    first = shards[0]
    counters = {}
    for name in COUNTERS:
        total: Counter = Counter()
        for s in shards:
            total.update(s[name])
        counters[name] = dict(sorted(total.items()))
    examples: dict[str, list] = {}
    for s in shards:
        for reason, items in s["examples"].items():
            examples.setdefault(reason, []).extend(items)
    return ValidateStats(
        source=first["source"],
        source_kind=first["source_kind"],
        shards=len(shards),
        **{
            k: sum(s[k] for s in shards)
            for k in ("input_records", "kept", "quarantined", "bytes_in", "bytes_kept", "files_redacted")
        },
        **counters,
        examples={r: items[:EXAMPLES_PER_REASON] for r, items in sorted(examples.items())},
        selection=first["selection"],
        config=first["config"],
    )


def _rows(output: str, folder: str, column: str, world_size: int) -> int:
    return sum(
        io.read_parquet(shard_url(output, folder, r, world_size), columns=[column]).num_rows for r in range(world_size)
    )


def finish(output: str, world_size: int, tracker: Tracker | None = None) -> dict:
    """Merge the shards, check the count invariant, write stats.json and report.md."""
    return runner.run("validate-finish", None, output=output, world_size=world_size, tracker=tracker)


def finish_step(config: None, ctx: runner.Context) -> dict:
    output, world_size, tracker = ctx.output, ctx.world_size, ctx.tracker
    record = merge_stats(stage.read_shard_stats(output, STAGE, world_size))
    record.rows_written = {
        "files": _rows(output, "files", "repo", world_size),
        "quarantine": _rows(output, "quarantine", "reason", world_size),
    }
    record.invariant_ok = (
        record.input_records == record.kept + record.quarantined
        and sum(record.by_reason.values()) == record.quarantined
        and record.rows_written == {"files": record.kept, "quarantine": record.quarantined}
    )
    stats = dataclasses.asdict(record)
    stage.write_stats(output, stats)
    report = render_report(stats)
    io.write_text(io.join(output, "report.md"), report)
    tracker.log_metrics(_metrics(stats))
    tracker.log_text(report, "report.md")
    if not stats["invariant_ok"]:
        raise InvariantError(
            f"{output}: input_records={stats['input_records']} but kept={stats['kept']} + "
            f"quarantined={stats['quarantined']} (by_reason sums to {sum(stats['by_reason'].values())}; "
            f"rows written {stats['rows_written']})"
        )
    return stats

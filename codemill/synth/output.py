"""What synth writes: ``data/``, ``quarantine/``, ``stats.json`` and ``report.md`` (the
contract in docs/synth.md). Every answer the teacher was asked for ends as exactly one
:class:`Outcome`: kept (``reason == ""``) or quarantined with a reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from codemill import io, stage
from codemill.tracking import Tracker

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.large_string())])
DATA_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(MESSAGE)),
        ("task_id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("sample", pa.int32()),
        ("seed", pa.large_string()),
        ("tests", pa.large_string()),
        ("teacher_model", pa.string()),
        ("language", pa.string()),
        ("origin", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("task_id", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("sample", pa.int32()),
        ("origin", pa.string()),
        ("prompt", pa.large_string()),
        ("raw", pa.large_string()),
    ]
)
FILE = stage.shard_name(0, 1) + ".parquet"


@dataclass
class Outcome:
    """One asked-for answer and what became of it."""

    task_id: str
    source: str  # oss-instruct | distill:tasks | distill:problems | distill:mutual
    kind: str  # oss-instruct | generate | output | input | stdio
    sample: int  # the answer's number within its task
    prompt: str  # the user turn
    answer: str = ""  # the teacher's whole answer, reasoning included
    seed: str = ""
    tests: str = ""
    language: str = "python"
    origin: str = ""
    reason: str = ""
    detail: str = ""
    truncated: bool = False  # the teacher stopped at max_tokens (finish_reason "length")

    @property
    def kept(self) -> bool:
        return not self.reason

    def drop(self, reason: str, detail: str) -> None:
        if self.truncated and reason in ("unparseable", "no_tests"):
            detail += " (the answer stopped at --max-tokens: finish_reason length)"
        self.reason, self.detail = reason, detail[:1000]


def write_tables(output: str, outcomes: list[Outcome], teacher_model: str) -> list[str]:
    """Write data/ and quarantine/; an empty table is not written (``datasets`` cannot read a
    Parquet file without rows), so an empty folder means nothing was kept (or dropped)."""
    written = []
    kept = [o for o in outcomes if o.kept]
    dropped = [o for o in outcomes if not o.kept]
    data = {
        "messages": [[{"role": "user", "content": o.prompt}, {"role": "assistant", "content": o.answer}] for o in kept],
        "teacher_model": [teacher_model] * len(kept),
        **{
            name: [getattr(o, name) for o in kept]
            for name in ("task_id", "source", "kind", "sample", "seed", "tests", "language", "origin")
        },
    }
    if kept:
        io.write_parquet(pa.Table.from_pydict(data, schema=DATA_SCHEMA), io.join(output, "data", FILE))
        written.append(f"data/{FILE}")
    quarantine = {
        name: [getattr(o, name if name != "raw" else "answer") for o in dropped] for name in QUARANTINE_SCHEMA.names
    }
    if dropped:
        table = pa.Table.from_pydict(quarantine, schema=QUARANTINE_SCHEMA)
        io.write_parquet(table, io.join(output, "quarantine", FILE))
        written.append(f"quarantine/{FILE}")
    return written


def base_stats(outcomes: list[Outcome], usage, requested: int) -> dict:
    kept = sum(o.kept for o in outcomes)
    by_reason = dict(sorted(Counter(o.reason for o in outcomes if not o.kept).items()))
    return {
        "requested": requested,
        "answered": len(outcomes),
        "kept": kept,
        "quarantined": len(outcomes) - kept,
        "by_reason": by_reason,
        "acceptance_rate": round(kept / len(outcomes), 4) if outcomes else 0.0,
        "invariant_ok": len(outcomes) == kept + sum(by_reason.values()) == requested,
        "tokens": {
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "total": usage.prompt_tokens + usage.completion_tokens,
        },
        "http_requests": usage.http_requests,
        "retries": usage.retries,
        "cache_hits": usage.cache_hits,
        "teacher_errors": dict(sorted(usage.errors.items())),
    }


def _clip(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def report(output: str, stats: dict, outcomes: list[Outcome], examples: int) -> None:
    lines = [f"# synth ({stats.get('mode', '')})", ""]
    if stats.get("skipped"):
        lines += [f"Skipped: {stats['reason']}", ""]
        io.write_text(io.join(output, "report.md"), "\n".join(lines))
        return
    lines += ["| | |", "|---|---|"]
    lines += [
        f"| {k} | {stats[k]} |"
        for k in (
            "teacher_url",
            "teacher_model",
            "requested",
            "answered",
            "kept",
            "quarantined",
            "acceptance_rate",
            "http_requests",
            "retries",
            "cache_hits",
        )
        if k in stats
    ]
    lines += [f"| tokens | {stats['tokens']} |", "", "## Quarantined, by reason", ""]
    lines += [f"- `{r}`: {n}" for r, n in stats["by_reason"].items()] or ["(none)"]
    for name in ("pass_rate_histogram", "agreement_histogram"):
        if stats.get(name):
            lines += ["", f"## {name.replace('_', ' ')}", "", "| bin | count |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in stats[name].items()]
    lines += ["", "## Kept examples", ""]
    for o in [o for o in outcomes if o.kept][:examples]:
        lines += [
            f"### {o.task_id} #{o.sample} ({o.origin or o.source})",
            "",
            "User:",
            "",
            "````",
            _clip(o.prompt),
            "````",
            "",
            "Assistant:",
            "",
            "````",
            _clip(o.answer),
            "````",
            "",
        ]
    lines += ["## Quarantined examples", ""]
    shown: Counter = Counter()
    for o in outcomes:
        if not o.kept and shown[o.reason] < 1:
            shown[o.reason] += 1
            lines += [
                f"### `{o.reason}`: {o.task_id} #{o.sample}",
                "",
                o.detail,
                "",
                "````",
                _clip(o.answer, 800),
                "````",
                "",
            ]
    io.write_text(io.join(output, "report.md"), "\n".join(lines) + "\n")


def finish(
    output: str, stats: dict, outcomes: list[Outcome], teacher_model: str, examples: int, tracker: Tracker
) -> dict:
    stats["files"] = write_tables(output, outcomes, teacher_model)
    stage.write_stats(output, stats)
    report(output, stats, outcomes, examples)
    tracker.log_metrics(
        {
            k: float(v)
            for k, v in stage.numeric_metrics(stats).items()
            if "." not in k or k.startswith(("by_reason.", "tokens."))
        }
    )
    tracker.log_dict(stats, "synth_stats.json")
    return stats

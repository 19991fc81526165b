"""The ``tasks-finish`` step: merge the shards, deduplicate, cap, make the tasks, report.

Deduplication is global, so it happens here: functions with the same normalized source
(``ast.unparse`` of the def: the same function vendored in two repositories) keep the
copy with the smallest (repo, path, line); the others go to ``quarantine/finish.parquet``
as ``duplicate``. Only functions that made it through execution are compared, so which
copy is kept does not depend on how repositories were sharded. ``--max-tasks`` then takes
functions in key order (a hash: no repository is favoured) while their tasks fit; the rest
are quarantined as ``over_limit``.

Writes ``tasks/train.parquet`` and ``tasks/heldout.parquet`` (:data:`kinds.TASK_SCHEMA`,
sorted by task_id; a split with no tasks has no file, except train, which always exists),
``stats.json`` and ``report.md``, and checks that ``candidates == functions_kept + quarantined``.
"""

from __future__ import annotations

from collections import Counter

from codemill import io, runner, stage
from codemill.tasks.config import TasksConfig
from codemill.tasks.kinds import TASK_SCHEMA, build_tasks
from codemill.tasks.report import render_report
from codemill.tasks.shard import QUARANTINE_SCHEMA, STAGE, shard_url, write_rows

SPLITS = ("train", "heldout")


def dedup(functions: list[dict]) -> tuple[list[dict], list[dict]]:
    """(kept, quarantine rows): one function per key, the smallest (repo, path, line)."""
    kept: dict[str, dict] = {}
    dropped = []
    for row in sorted(functions, key=lambda r: (r["key"], r["repo"], r["path"], r["line"])):
        first = kept.setdefault(row["key"], row)
        if first is not row:
            dropped.append(
                _quarantine(row, "duplicate", f"the same source as {first['repo']}/{first['path']}:{first['line']}")
            )
    return list(kept.values()), dropped


def cap(functions: list[dict], per_function: int, max_tasks: int) -> tuple[list[dict], list[dict]]:
    if not max_tasks:
        return functions, []
    room = max_tasks // per_function
    over = [_quarantine(r, "over_limit", f"--max-tasks {max_tasks} reached") for r in functions[room:]]
    return functions[:room], over


def _quarantine(row: dict, reason: str, detail: str) -> dict:
    return {
        "entry_point": row["entry_point"],
        "repo": row["repo"],
        "path": row["path"],
        "line": row["line"],
        "reason": reason,
        "detail": detail,
    }


def merge(shards: list[dict]) -> dict:
    merged: dict = {"input": shards[0]["input"], "shards": len(shards)}
    for key in (
        "input_rows",
        "repos",
        "python_files",
        "files_unparsable",
        "candidates",
        "quarantined",
        "functions_run",
        "functions_executed",
        "cases",
        "examples_disagreeing",
    ):
        merged[key] = sum(s[key] for s in shards)
    reasons: Counter = Counter()
    for s in shards:
        reasons.update(s["by_reason"])
    merged["by_reason"] = dict(sorted(reasons.items()))
    merged["disagreeing_examples"] = [e for s in shards for e in s["disagreeing_examples"]][:20]
    merged["timing"] = {k: round(sum(s["timing"][k] for s in shards), 3) for k in shards[0]["timing"] if k != "workers"}
    merged["timing"]["workers"] = shards[0]["timing"]["workers"]
    return merged


# settings the shards used; the others (kinds, max_tasks, heldout_fraction, report_examples, workers) are
# the finish's own, so a finish can be run again with other ones without redoing the shards
SHARD_SETTINGS = (
    "seed",
    "timeout",
    "runs",
    "max_cases",
    "max_input_chars",
    "memory_mb",
    "decontam_paths",
    "decontam_fields",
    "decontam_ngram",
    "decontam_min_tokens",
)


def check_same_config(output: str, shards: list[dict], config: TasksConfig) -> None:
    """The tasks are made with the shards' settings: a finish with other shard settings is refused."""
    current = stage.config_dict(config)
    for rank, shard in enumerate(shards):
        done = shard.get("config") or {}
        diff = [f"{k}: {done[k]!r} -> {current[k]!r}" for k in SHARD_SETTINGS if k in done and done[k] != current[k]]
        if diff:
            raise stage.InputError(
                f"{output}: tasks shard {rank} ran with other settings ({'; '.join(diff)}); "
                "finish with the shards' settings, or use a new --output"
            )


def finish_step(config: TasksConfig, ctx: runner.Context) -> dict:
    output, world_size = ctx.output, ctx.world_size
    shards = stage.read_shard_stats(output, STAGE, world_size)
    check_same_config(output, shards, config)
    stats = merge(shards)
    stats["config"] = stage.config_dict(config)
    tables = [io.read_parquet(shard_url(output, "_work/functions", r, world_size)) for r in range(world_size)]
    functions, duplicates = dedup([row for t in tables for row in t.to_pylist()])
    functions, over = cap(functions, len(config.kinds), config.max_tasks)
    finish_quarantine = duplicates + over
    tasks = sorted(
        (t for row in functions for t in build_tasks(row, config.kinds, config.seed, config.heldout_fraction)),
        key=lambda t: t["task_id"],
    )
    for split in SPLITS:  # train.parquet always exists (with no rows when there are no tasks)
        write_rows(
            [t for t in tasks if t["split"] == split],
            TASK_SCHEMA,
            io.join(output, "tasks", f"{split}.parquet"),
            keep_empty=split == "train",
        )
    write_rows(finish_quarantine, QUARANTINE_SCHEMA, io.join(output, "quarantine", "finish.parquet"))
    reasons = Counter(stats["by_reason"]) + Counter(q["reason"] for q in finish_quarantine)
    stats.update(
        {
            "functions_kept": len(functions),
            "quarantined": stats["quarantined"] + len(finish_quarantine),
            "by_reason": dict(sorted(reasons.items())),
            "tasks": len(tasks),
            "by_kind": dict(sorted(Counter(t["kind"] for t in tasks).items())),
            "by_split": {s: sum(t["split"] == s for t in tasks) for s in SPLITS},
            "generate_skipped_wrong_doctest": sum(bool(r.get("doctest_disagrees")) for r in functions)
            if "generate" in config.kinds
            else 0,
        }
    )
    stats["invariant_ok"] = (
        stats["candidates"] == stats["functions_kept"] + stats["quarantined"]
        and sum(reasons.values()) == stats["quarantined"]
    )
    stage.write_stats(output, stats)
    report = render_report(stats, tasks, config.report_examples)
    io.write_text(io.join(output, "report.md"), report)
    ctx.tracker.log_metrics(stage.numeric_metrics({k: v for k, v in stats.items() if k not in ("config", "timing")}))
    ctx.tracker.log_text(report, "report.md")
    if not stats["invariant_ok"]:
        raise RuntimeError(
            f"{output}: tasks counts do not add up: candidates={stats['candidates']}, "
            f"functions_kept={stats['functions_kept']}, quarantined={stats['quarantined']}"
        )
    return stats

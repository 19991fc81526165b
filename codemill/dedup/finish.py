"""Step 4, once: merge the steps' stats, check that every repository and file is accounted
for, write ``stats.json`` and ``report.md`` (largest clusters, most copied files)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import pyarrow.compute as pc

from codemill import io, runner, stage
from codemill.dedup.layout import CLUSTER, SIGNATURE, WRITE
from codemill.tracking import Tracker

_SUMMED = ("input_repos", "input_files", "input_bytes")
_FROM_CLUSTER = (
    "kept_repos",
    "removed_near_repos",
    "removed_near_files",
    "removed_exact_files",
    "clusters",
    "largest_cluster",
    "repos_emptied_by_exact",
    "repos_without_shingles",
    "candidate_pairs",
    "pairs_rejected",
    "bands",
    "rows",
)


@dataclass
class DedupStats:
    """The stage's ``stats.json`` (docs/architecture.md): what came in, what was kept, what
    was removed and by which rule, and whether every repository and file is accounted for."""

    input_repos: int
    input_files: int
    input_bytes: int
    kept_repos: int
    kept_files: int
    kept_bytes: int
    removed_near_repos: int
    removed_near_files: int
    removed_exact_files: int
    clusters: int
    largest_cluster: int
    repos_emptied_by_exact: int
    repos_without_shingles: int
    candidate_pairs: int
    pairs_rejected: int
    bands: int
    rows: int
    invariant_ok: bool = True
    problems: list[str] = field(default_factory=list)


def finish(output: str, world_size: int = 1, tracker: Tracker | None = None) -> dict:
    """Write stats.json and report.md from the finished steps; returns the stats.

    Raises RuntimeError when the counts do not add up (input == kept + removed).
    """
    return runner.run("dedup-finish", None, output=output, world_size=world_size, tracker=tracker)


def finish_step(config: None, ctx: runner.Context) -> DedupStats:
    output, world_size, tracker = ctx.output, ctx.world_size, ctx.tracker
    signed = stage.read_shard_stats(output, SIGNATURE, world_size)
    clustered = stage.read_shard_stats(output, CLUSTER, 1)[0]
    written = stage.read_shard_stats(output, WRITE, world_size)
    record = DedupStats(
        **{k: sum(s.get(k, 0) for s in signed) for k in _SUMMED},
        **{k: clustered[k] for k in _FROM_CLUSTER},
        kept_files=sum(s["kept_files"] for s in written),
        kept_bytes=sum(s["kept_bytes"] for s in written),
    )
    record.problems = _check(dataclasses.asdict(record), clustered, written)
    record.invariant_ok = not record.problems
    stats = dataclasses.asdict(record)
    stage.write_stats(output, stats)
    io.write_text(io.join(output, "report.md"), _report(output, stats, clustered.get("config", {})))
    tracker.log_metrics(stage.numeric_metrics(stats))
    _log_artifacts(output, tracker)
    if record.problems:
        raise RuntimeError(f"{output}: dedup counts do not add up: {'; '.join(record.problems)}")
    return record


def _check(stats: dict, clustered: dict, written: list[dict]) -> list[str]:
    problems = []
    read = sum(s["input_files"] for s in written)
    removed = stats["removed_near_files"] + stats["removed_exact_files"]
    if stats["input_files"] != stats["kept_files"] + removed:
        problems.append(f"input_files {stats['input_files']} != kept_files {stats['kept_files']} + removed {removed}")
    if stats["input_repos"] != stats["kept_repos"] + stats["removed_near_repos"]:
        problems.append(
            f"input_repos {stats['input_repos']} != kept_repos {stats['kept_repos']} + "
            f"removed_near_repos {stats['removed_near_repos']}"
        )
    if read != stats["input_files"] or clustered["input_files"] != stats["input_files"]:
        problems.append(
            f"files seen differ between steps: signature {stats['input_files']}, "
            f"cluster {clustered['input_files']}, write {read}"
        )
    for key in ("near", "exact"):
        dropped = sum(s[f"dropped_{key}_files"] for s in written)
        if dropped != stats[f"removed_{key}_files"]:
            problems.append(
                f"write dropped {dropped} {key} duplicates, cluster decided {stats[f'removed_{key}_files']}"
            )
    return problems


def _log_artifacts(output: str, tracker: Tracker) -> None:
    names = ("stats.json", "report.md", "clusters.parquet", "exact_duplicates.parquet")
    with io.local_files(output, names) as local:
        for name in names:
            tracker.log_artifact(os.path.join(local, name))


# ---------------------------------------------------------------------------- report


def _report(output: str, stats: dict, config: dict) -> str:
    mb = 1e6
    lines = [
        "# Dedup report",
        "",
        "Repository-level near-dedup (MinHash LSH over each repository's concatenated files), then exact "
        "file dedup across the surviving repositories.",
        "",
        "| | repositories | files | MB |",
        "|---|---:|---:|---:|",
        f"| input | {stats['input_repos']} | {stats['input_files']} | {stats['input_bytes'] / mb:.2f} |",
        f"| removed as near-duplicate repositories | {stats['removed_near_repos']} | {stats['removed_near_files']} | |",
        f"| removed as exact file copies | | {stats['removed_exact_files']} | |",
        f"| kept | {stats['kept_repos']} | {stats['kept_files']} | {stats['kept_bytes'] / mb:.2f} |",
        "",
        f"- near-duplicate clusters (2+ repositories): {stats['clusters']}, largest: {stats['largest_cluster']}",
        f"- candidate pairs from LSH: {stats['candidate_pairs']}, rejected by the {config.get('check')} check: "
        f"{stats['pairs_rejected']}",
        f"- kept repositories left with no file after exact dedup: {stats['repos_emptied_by_exact']}",
        f"- repositories without a single shingle (never near-duplicates): {stats['repos_without_shingles']}",
        "- counts add up (input == kept + removed): "
        + ("yes" if stats["invariant_ok"] else "NO: " + "; ".join(stats["problems"])),
        "",
        f"Parameters: {config.get('ngram')}-gram shingles, {config.get('num_perm')} permutations, "
        f"threshold {config.get('threshold')}, {stats['bands']} bands x {stats['rows']} rows, "
        f"candidate check '{config.get('check')}', seed {config.get('seed')}.",
        "",
    ]
    lines += _largest_clusters(output, int(config.get("report_clusters", 15)))
    lines += _most_copied(output)
    return "\n".join(lines) + "\n"


def _largest_clusters(output: str, limit: int) -> list[str]:
    table = io.read_parquet(io.join(output, "clusters.parquet"))
    table = table.filter(pc.and_(pc.greater(table.column("cluster_size"), 1), pc.less(table.column("cluster"), limit)))
    lines = ["## Largest clusters", ""]
    if table.num_rows == 0:
        return lines + ["No near-duplicate repositories.", ""]
    lines += ["| cluster | size | kept | removed (estimated Jaccard to the kept one) |", "|---:|---:|---|---|"]
    rows = table.to_pylist()
    for cid in sorted({r["cluster"] for r in rows}):
        members = [r for r in rows if r["cluster"] == cid]
        kept = next(r for r in members if r["kept"])
        removed = [f"{r['repo']} ({r['jaccard']:.2f})" for r in members if not r["kept"]]
        shown = ", ".join(removed[:8]) + (f", and {len(removed) - 8} more" if len(removed) > 8 else "")
        lines.append(f"| {cid} | {len(members)} | {kept['repo']} ({kept['files']} files) | {shown} |")
    return lines + [""]


def _most_copied(output: str, limit: int = 10) -> list[str]:
    table = io.read_parquet(io.join(output, "exact_duplicates.parquet"))
    lines = ["## Most copied files", ""]
    if table.num_rows == 0:
        return lines + ["No exact copies across the surviving repositories.", ""]
    counts = table.group_by(["kept_repo", "kept_path"]).aggregate([("repo", "count")])
    counts = counts.sort_by([("repo_count", "descending"), ("kept_repo", "ascending"), ("kept_path", "ascending")])
    lines += ["| kept copy | copies removed |", "|---|---:|"]
    for r in counts.slice(0, limit).to_pylist():
        lines.append(f"| {r['kept_repo']}/{r['kept_path']} | {r['repo_count']} |")
    by_rule = table.group_by("decided_by").aggregate([("repo", "count")]).sort_by("decided_by").to_pylist()
    lines += ["", "Kept copy decided by: " + ", ".join(f"{r['decided_by']} {r['repo_count']}" for r in by_rule), ""]
    return lines

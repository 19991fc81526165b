"""Step 2, once: near-duplicate clusters of repositories, then exact copies among survivors.

Order matters (docs/dedup.md): near-dedup sees whole repositories first; exact file dedup
then runs only across the repositories that survive, so a fork is judged on all of its
files before any of them is stripped.

Reads ``<output>/_work/`` as written by every signature shard, in input-name order (so
the result does not depend on ``world_size``), and writes:

- ``clusters.parquet``: one row per repository: repo, input, files, bytes, cluster (0 is
  the largest), cluster_size, kept, kept_repo, jaccard (MinHash estimate to the kept one);
- ``exact_duplicates.parquet``: one row per dropped copy: repo, path, hash, kept_repo,
  kept_path, decided_by (stars, files or name);
- ``_work/drop/NAME.parquet`` per input file: row, reason, the rows the write step skips.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codemill import io, runner, stage
from codemill.dedup.config import DedupConfig
from codemill.dedup.exact import deciding_criterion, find_copies, repo_preference
from codemill.dedup.layout import SIGNATURE, load_array, work_url
from codemill.dedup.minhash import estimated_jaccard
from codemill.dedup.near import EstimateCheck, ExactCheck, Signatures, choose_kept, near_duplicate_sets
from codemill.stage import InputError
from codemill.tracking import Tracker

_GATHER = 1 << 15  # repositories whose full signatures are compared at once


def cluster(config: DedupConfig, output: str, world_size: int = 1, tracker: Tracker | None = None) -> dict:
    """Cluster all repositories signed by ``world_size`` shards; returns the step's stats."""
    return runner.run("dedup-cluster", config, output=output, world_size=world_size, tracker=tracker)


def cluster_step(config: DedupConfig, ctx: runner.Context) -> dict:
    output, world_size, tracker = ctx.output, ctx.world_size, ctx.tracker
    names = sorted(n for s in stage.read_shard_stats(output, SIGNATURE, world_size) for n in s["inputs"])
    repos = _load_repos(output, names)
    signatures = Signatures([load_array(work_url(output, "signatures", n, ".npy")) for n in names])
    if signatures.matrices and signatures.matrices[0].shape[0] != config.num_perm:
        raise InputError(
            f"{output}: signatures hold {signatures.matrices[0].shape[0]} permutations, "
            f"config asks for {config.num_perm}; rerun the signature step"
        )
    bands, rows = config.band_layout()
    check = _check(config, output, names, repos, signatures)
    with stage.Timer() as timer:
        roots, counters = near_duplicate_sets(signatures, repos["shingles"] > 0, bands, rows, check)
    kept_of = choose_kept(roots, repos["files"], repos["bytes"], repos["name_rank"])
    survivor = kept_of == np.arange(len(kept_of))
    clusters = _clusters_table(repos, kept_of, signatures)
    io.write_parquet(clusters, io.join(output, "clusters.parquet"))

    files = _load_files(output, names, signatures.offsets)
    in_survivor = survivor[files.column("repo_index").to_numpy()]
    surviving_files = files.filter(pa.array(in_survivor))
    rank = repo_preference(repos["stars"], repos["files"], repos["name_rank"])
    dropped, kept = find_copies(surviving_files, rank)
    io.write_parquet(_copies_table(surviving_files, dropped, kept, repos), io.join(output, "exact_duplicates.parquet"))
    _write_drops(output, names, files, ~in_survivor, surviving_files, dropped)

    emptied = (
        np.bincount(surviving_files.column("repo_index").to_numpy()[dropped], minlength=len(survivor)) == repos["files"]
    )
    sizes = clusters.column("cluster_size").to_numpy()
    stats = {
        "input_repos": int(len(survivor)),
        "input_files": int(files.num_rows),
        "kept_repos": int(survivor.sum()),
        "removed_near_repos": int((~survivor).sum()),
        "removed_near_files": int((~in_survivor).sum()),
        "removed_exact_files": int(len(dropped)),
        "repos_emptied_by_exact": int((survivor & emptied & (repos["files"] > 0)).sum()),
        "clusters": int((clusters.column("kept").to_numpy(zero_copy_only=False) & (sizes > 1)).sum()),
        "largest_cluster": int(sizes.max()) if len(sizes) else 0,
        "repos_without_shingles": int((repos["shingles"] == 0).sum()),
        "bands": bands,
        "rows": rows,
        **counters,
    }
    tracker.log_metrics({**{k: float(v) for k, v in stats.items()}, "near_dedup_seconds": timer.seconds})
    stats["config"] = stage.config_dict(config)  # finish reports the parameters used
    return stats


# ---------------------------------------------------------------------------- loading


def _load_repos(output: str, names: list[str]) -> dict:
    """Every repository in input-name order: names as one Arrow array (``repo``), the
    rest as numpy arrays; ``name_rank`` orders the names (byte order) for tie-breaks."""
    tables = [io.read_parquet(work_url(output, "repos", n, ".parquet")) for n in names]
    counts = [t.num_rows for t in tables]
    repo = (
        pa.concat_arrays([t.column("repo").combine_chunks() for t in tables]) if tables else pa.array([], pa.string())
    )
    if len(pc.unique(repo)) != len(repo):
        counted = pc.value_counts(repo)
        twice = sorted(v["values"] for v in counted.filter(pc.greater(counted.field("counts"), 1)).to_pylist())
        raise InputError(
            f"{output}: repositories appear in more than one input file (a repository must be "
            f"whole in one file): {twice[:5]}"
        )

    def column(key: str, fill: int = 0) -> np.ndarray:
        parts = [t.column(key).fill_null(fill).to_numpy() for t in tables if key in t.column_names]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    name_rank = np.empty(len(repo), dtype=np.int64)
    name_rank[pc.sort_indices(repo).to_numpy()] = np.arange(len(repo))
    return {
        "repo": repo,
        "input": np.repeat(np.arange(len(names)), counts),
        "input_names": pa.array(names, pa.string()),
        "name_rank": name_rank,
        "files": column("files"),
        "bytes": column("bytes"),
        "stars": column("stars", -1),
        "shingles": column("shingles"),
        "shingle_start": column("shingle_start"),
        "shingle_end": column("shingle_end"),
    }


def _load_files(output: str, names: list[str], offsets: np.ndarray) -> pa.Table:
    """Every file of every input, with repo_index made global and the input's position."""
    parts = []
    for i, name in enumerate(names):
        table = io.read_parquet(work_url(output, "files", name, ".parquet"))
        global_index = table.column("repo_index").to_numpy() + offsets[i]
        table = table.set_column(0, "repo_index", pa.array(global_index, pa.int64()))
        parts.append(table.append_column("input_index", pa.array(np.full(table.num_rows, i, dtype=np.int64))))
    if not parts:
        return pa.table(
            {
                "repo_index": pa.array([], pa.int64()),
                "path": pa.array([], pa.string()),
                "hash": pa.array([], pa.string()),
                "size": pa.array([], pa.int64()),
                "row": pa.array([], pa.int64()),
                "input_index": pa.array([], pa.int64()),
            }
        )
    return pa.concat_tables(parts)


def _check(config: DedupConfig, output: str, names: list[str], repos: dict, signatures: Signatures):
    if config.check == "estimate":
        return EstimateCheck(signatures, config.threshold)
    if config.check == "none":
        return None
    if len(repos["shingle_start"]) != len(repos["repo"]):
        raise InputError(
            f"{output}: check 'exact' needs the shingles, which the signature step kept only "
            "with --check exact; rerun it with that setting"
        )
    shingles = [load_array(work_url(output, "shingles", n, ".npy")) for n in names]
    return ExactCheck(shingles, repos["shingle_start"], repos["shingle_end"], signatures.offsets, config.threshold)


# ---------------------------------------------------------------------------- outputs


def _clusters_table(repos: dict, kept_of: np.ndarray, signatures: Signatures) -> pa.Table:
    n = len(kept_of)
    size = np.bincount(kept_of, minlength=n)[kept_of] if n else np.empty(0, dtype=np.int64)
    reps = np.flatnonzero(kept_of == np.arange(n))
    cluster_of_rep = np.empty(n, dtype=np.int64)
    cluster_of_rep[reps[np.lexsort((repos["name_rank"][reps], -size[reps]))]] = np.arange(len(reps))
    cluster = cluster_of_rep[kept_of] if n else np.empty(0, dtype=np.int64)
    jaccard = np.ones(n, dtype=np.float64)
    members = np.flatnonzero(kept_of != np.arange(n))
    for i in range(0, len(members), _GATHER):
        part = members[i : i + _GATHER]
        jaccard[part] = estimated_jaccard(signatures.columns(part).T, signatures.columns(kept_of[part]).T)
    kept = kept_of == np.arange(n)
    order = np.lexsort((repos["name_rank"], ~kept, cluster))
    return pa.table(
        {
            "repo": repos["repo"].take(pa.array(order)),
            "input": repos["input_names"].take(pa.array(repos["input"][order])),
            "files": pa.array(repos["files"][order]),
            "bytes": pa.array(repos["bytes"][order]),
            "cluster": pa.array(cluster[order]),
            "cluster_size": pa.array(size[order].astype(np.int64)),
            "kept": pa.array(kept[order]),
            "kept_repo": repos["repo"].take(pa.array(kept_of[order])),
            "jaccard": pa.array(jaccard[order]),
        }
    )


def _copies_table(files: pa.Table, dropped: np.ndarray, kept: np.ndarray, repos: dict) -> pa.Table:
    repo_index = files.column("repo_index").to_numpy()
    dropped_repo, kept_repo = repo_index[dropped], repo_index[kept]
    table = pa.table(
        {
            "repo": repos["repo"].take(pa.array(dropped_repo, pa.int64())),
            "path": files.column("path").take(pa.array(dropped, pa.int64())),
            "hash": files.column("hash").take(pa.array(dropped, pa.int64())),
            "kept_repo": repos["repo"].take(pa.array(kept_repo, pa.int64())),
            "kept_path": files.column("path").take(pa.array(kept, pa.int64())),
            "decided_by": pa.array(
                deciding_criterion(repos["stars"], repos["files"], kept_repo, dropped_repo).tolist(), pa.string()
            ),
        }
    )
    return table.sort_by([("repo", "ascending"), ("path", "ascending")])


def _write_drops(
    output: str, names: list[str], files: pa.Table, near: np.ndarray, surviving: pa.Table, dropped: np.ndarray
) -> None:
    """Per input file, the rows the write step leaves out (sorted), with the reason."""
    inputs = np.concatenate(
        [files.column("input_index").to_numpy()[near], surviving.column("input_index").to_numpy()[dropped]]
    )
    rows = np.concatenate([files.column("row").to_numpy()[near], surviving.column("row").to_numpy()[dropped]])
    exact = np.concatenate([np.zeros(int(near.sum()), dtype=bool), np.ones(len(dropped), dtype=bool)])
    order = np.lexsort((rows, inputs))
    inputs, rows, exact = inputs[order], rows[order], exact[order]
    bounds = np.searchsorted(inputs, np.arange(len(names) + 1))
    reason = np.array(["near_duplicate", "exact_duplicate"])
    for i, name in enumerate(names):
        part = slice(bounds[i], bounds[i + 1])
        io.write_parquet(
            pa.table(
                {
                    "row": pa.array(rows[part], pa.int64()),
                    "reason": pa.array(reason[exact[part].astype(np.int64)].tolist(), pa.string()),
                }
            ),
            work_url(output, "drop", name, ".parquet"),
        )

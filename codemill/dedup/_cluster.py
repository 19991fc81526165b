"""Step 2, once: near-duplicate clusters of repositories, then exact copies among survivors.

Order matters (NOTES.md): near-dedup sees whole repositories first; exact file dedup
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

from collections import Counter

import numpy as np
import pyarrow as pa

from codemill import io, stage
from codemill.dedup._config import DedupConfig
from codemill.dedup._exact import deciding_criterion, find_copies, repo_preference
from codemill.dedup._layout import CLUSTER, SIGNATURE, load_array, work_url
from codemill.dedup._minhash import estimated_jaccard
from codemill.dedup._near import EstimateCheck, ExactCheck, Signatures, choose_kept, near_duplicate_sets
from codemill.stage import InputError
from codemill.tracking import NoOpTracker

_GATHER = 1 << 15  # repositories whose full signatures are compared at once


def cluster(config: DedupConfig, output: str, world_size: int = 1, tracker=None) -> dict:
    """Cluster all repositories signed by ``world_size`` shards; returns the step's stats."""
    tracker = tracker or NoOpTracker()
    config.ensure_valid()
    if stage.shard_done(output, CLUSTER, 0, 1):
        return io.read_json(stage.marker_url(output, CLUSTER, 0, 1))
    stage.log_config("dedup-cluster", config, tracker)
    names = sorted(n for s in stage.read_shard_stats(output, SIGNATURE, world_size) for n in s["inputs"])
    repos = _load_repos(output, names)
    signatures = Signatures([load_array(work_url(output, "signatures", n, ".npy")) for n in names])
    if signatures.matrices and signatures.matrices[0].shape[0] != config.num_perm:
        raise InputError(f"{output}: signatures hold {signatures.matrices[0].shape[0]} permutations, "
                         f"config asks for {config.num_perm}; rerun the signature step")
    bands, rows = config.band_layout()
    check = _check(config, output, names, repos, signatures)
    with stage.Timer() as timer:
        roots, counters = near_duplicate_sets(signatures, repos["shingles"] > 0, bands, rows, check)
    kept_of = choose_kept(roots, repos["files"], repos["bytes"], repos["repo"])
    survivor = kept_of == np.arange(len(kept_of))
    clusters = _clusters_table(repos, kept_of, signatures)
    io.write_parquet(clusters, io.join(output, "clusters.parquet"))

    files = _load_files(output, names, signatures.offsets)
    in_survivor = survivor[files.column("repo_index").to_numpy()]
    surviving_files = files.filter(pa.array(in_survivor))
    rank = repo_preference(repos["stars"], repos["files"], repos["repo"])
    dropped, kept = find_copies(surviving_files, rank)
    io.write_parquet(_copies_table(surviving_files, dropped, kept, repos),
                     io.join(output, "exact_duplicates.parquet"))
    _write_drops(output, names, files, ~in_survivor, surviving_files, dropped)

    sizes = clusters.column("cluster_size").to_numpy()
    left = np.bincount(surviving_files.column("repo_index").to_numpy()[dropped], minlength=len(survivor))
    stats = {
        "input_repos": int(len(survivor)), "input_files": int(files.num_rows),
        "kept_repos": int(survivor.sum()), "removed_near_repos": int((~survivor).sum()),
        "removed_near_files": int((~in_survivor).sum()), "removed_exact_files": int(len(dropped)),
        "repos_emptied_by_exact": int((survivor & (left == repos["files"]) & (repos["files"] > 0)).sum()),
        "clusters": int(len(np.unique(clusters.column("cluster").to_numpy()[sizes > 1]))),
        "largest_cluster": int(sizes.max()) if len(sizes) else 0,
        "repos_without_shingles": int((repos["shingles"] == 0).sum()),
        "bands": bands, "rows": rows, **counters,
    }
    tracker.log_metrics({**{k: float(v) for k, v in stats.items()}, "cluster_seconds": timer.seconds})
    stats["config"] = stage.config_dict(config)  # finish reports the parameters used
    stage.mark_shard_done(output, CLUSTER, 0, 1, stats)
    return stats


# ---------------------------------------------------------------------------- loading


def _load_repos(output: str, names: list[str]) -> dict[str, np.ndarray]:
    tables = [io.read_parquet(work_url(output, "repos", n, ".parquet")) for n in names]
    columns = {"repo": [], "input": [], "files": [], "bytes": [], "stars": [], "shingles": [],
               "shingle_start": [], "shingle_end": []}
    for name, table in zip(names, tables):
        for key in columns:
            if key == "input":
                columns[key].extend([name] * table.num_rows)
            elif key in table.column_names:
                columns[key].extend(table.column(key).to_pylist())
    repo_names = columns["repo"]
    twice = sorted(r for r, n in Counter(repo_names).items() if n > 1)
    if twice:
        raise InputError(f"{output}: repositories appear in more than one input file (a repository must be "
                         f"whole in one file): {twice[:5]}")
    return {
        "repo": np.array(repo_names, dtype=np.str_), "input": np.array(columns["input"], dtype=np.str_),
        "files": np.array(columns["files"], dtype=np.int64), "bytes": np.array(columns["bytes"], dtype=np.int64),
        "stars": np.array([-1 if s is None else s for s in columns["stars"]], dtype=np.int64),
        "shingles": np.array(columns["shingles"], dtype=np.int64),
        "shingle_start": np.array(columns["shingle_start"], dtype=np.int64),
        "shingle_end": np.array(columns["shingle_end"], dtype=np.int64),
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
        return pa.table({"repo_index": pa.array([], pa.int64()), "path": pa.array([], pa.string()),
                         "hash": pa.array([], pa.string()), "size": pa.array([], pa.int64()),
                         "row": pa.array([], pa.int64()), "input_index": pa.array([], pa.int64())})
    return pa.concat_tables(parts)


def _check(config: DedupConfig, output: str, names: list[str], repos: dict, signatures: Signatures):
    if config.check == "estimate":
        return EstimateCheck(signatures, config.threshold)
    if config.check == "none":
        return None
    if len(repos["shingle_start"]) != len(repos["repo"]):
        raise InputError(f"{output}: check 'exact' needs the shingles, which the signature step kept only "
                         "with --check exact; rerun it with that setting")
    shingles = [load_array(work_url(output, "shingles", n, ".npy")) for n in names]
    return ExactCheck(shingles, repos["shingle_start"], repos["shingle_end"], signatures.offsets, config.threshold)


# ---------------------------------------------------------------------------- outputs


def _clusters_table(repos: dict, kept_of: np.ndarray, signatures: Signatures) -> pa.Table:
    n = len(kept_of)
    size = np.bincount(kept_of, minlength=n)[kept_of] if n else np.empty(0, dtype=np.int64)
    reps = np.flatnonzero(kept_of == np.arange(n))
    cluster_of_rep = np.empty(n, dtype=np.int64)
    cluster_of_rep[reps[np.lexsort((repos["repo"][reps], -size[reps]))]] = np.arange(len(reps))
    cluster = cluster_of_rep[kept_of] if n else np.empty(0, dtype=np.int64)
    jaccard = np.ones(n, dtype=np.float64)
    members = np.flatnonzero(kept_of != np.arange(n))
    for i in range(0, len(members), _GATHER):
        part = members[i: i + _GATHER]
        jaccard[part] = estimated_jaccard(signatures.columns(part).T, signatures.columns(kept_of[part]).T)
    kept = kept_of == np.arange(n)
    order = np.lexsort((repos["repo"], ~kept, cluster))
    return pa.table({
        "repo": pa.array(repos["repo"][order].tolist(), pa.string()),
        "input": pa.array(repos["input"][order].tolist(), pa.string()),
        "files": pa.array(repos["files"][order]), "bytes": pa.array(repos["bytes"][order]),
        "cluster": pa.array(cluster[order]), "cluster_size": pa.array(size[order].astype(np.int64)),
        "kept": pa.array(kept[order]), "kept_repo": pa.array(repos["repo"][kept_of[order]].tolist(), pa.string()),
        "jaccard": pa.array(jaccard[order]),
    })


def _copies_table(files: pa.Table, dropped: np.ndarray, kept: np.ndarray, repos: dict) -> pa.Table:
    repo_index = files.column("repo_index").to_numpy()
    dropped_repo, kept_repo = repo_index[dropped], repo_index[kept]
    table = pa.table({
        "repo": pa.array(repos["repo"][dropped_repo].tolist(), pa.string()),
        "path": files.column("path").take(pa.array(dropped, pa.int64())),
        "hash": files.column("hash").take(pa.array(dropped, pa.int64())),
        "kept_repo": pa.array(repos["repo"][kept_repo].tolist(), pa.string()),
        "kept_path": files.column("path").take(pa.array(kept, pa.int64())),
        "decided_by": pa.array(deciding_criterion(repos["stars"], repos["files"], kept_repo, dropped_repo).tolist(),
                               pa.string()),
    })
    return table.sort_by([("repo", "ascending"), ("path", "ascending")])


def _write_drops(output: str, names: list[str], files: pa.Table, near: np.ndarray,
                 surviving: pa.Table, dropped: np.ndarray) -> None:
    """Per input file, the rows the write step leaves out, with the reason."""
    inputs = np.concatenate([files.column("input_index").to_numpy()[near],
                             surviving.column("input_index").to_numpy()[dropped]])
    rows = np.concatenate([files.column("row").to_numpy()[near], surviving.column("row").to_numpy()[dropped]])
    reasons = np.array(["near_duplicate"] * int(near.sum()) + ["exact_duplicate"] * len(dropped), dtype=np.str_)
    for i, name in enumerate(names):
        mine = np.flatnonzero(inputs == i)
        mine = mine[np.argsort(rows[mine], kind="stable")]
        io.write_parquet(pa.table({"row": pa.array(rows[mine], pa.int64()),
                                   "reason": pa.array(reasons[mine].tolist(), pa.string())}),
                         work_url(output, "drop", name, ".parquet"))

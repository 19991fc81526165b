"""Step 1, one shard: a MinHash signature and a file list with content hashes per repository.

Each input file is streamed in batches; a repository's rows must be contiguous (validate
writes them sorted by (repo, path)), so only one repository's text is in memory at a
time. Its document is its files' text in path order joined with newlines.

Written per input file ``NAME`` under ``<output>/_work/``:

- ``signatures/NAME.npy``: uint64 ``[num_perm, repos]``, band-major so the cluster step
  reads one band of every repository as contiguous rows;
- ``repos/NAME.parquet``: repo, files, bytes, stars (max over files), shingles
  (count, repeats included), and with ``check='exact'`` the slice of ``shingles/NAME.npy``
  holding its sorted distinct shingle hashes;
- ``files/NAME.parquet``: repo_index (into repos), path, hash (normalized content), size,
  row (its row in the input file, which is how the write step finds it again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from codemill import io, runner, stage
from codemill.dedup.config import DedupConfig
from codemill.dedup.exact import content_hash
from codemill.dedup.layout import assigned, check_input_schema, input_files, input_name, save_array, work_url
from codemill.dedup.minhash import MinHasher
from codemill.stage import InputError
from codemill.tracking import Tracker

FileRow = tuple[int, str, str | None, int | None]  # row, path, content, stars


def signature_shard(
    config: DedupConfig, input: str, output: str, rank: int = 0, world_size: int = 1, tracker: Tracker | None = None
) -> dict:
    """Sign every repository of this shard's input files; returns the shard's stats."""
    return runner.run(
        "dedup-signature", config, output=output, rank=rank, world_size=world_size, tracker=tracker, input=input
    )


def signature_step(config: DedupConfig, ctx: runner.Context) -> dict:
    input, output, rank, world_size, tracker = ctx.input("input"), ctx.output, ctx.rank, ctx.world_size, ctx.tracker
    mine = assigned(input_files(input), rank, world_size)
    hasher = MinHasher(config.num_perm, config.ngram, config.seed, config.chunk_bytes)
    totals: Counter = Counter()
    with stage.Timer() as timer:
        for url in mine:
            check_input_schema(url)
            totals.update(_sign_file(config, hasher, url, output))
    stats = {"inputs": [input_name(u) for u in mine], **{k: int(v) for k, v in sorted(totals.items())}}
    tracker.log_metrics(
        {
            **{k: float(v) for k, v in totals.items()},
            "signature_seconds": timer.seconds,
            "signature_mb_per_s": totals["input_bytes"] / 1e6 / max(timer.seconds, 1e-9),
        }
    )
    return stats


def _repositories(url: str, batch_rows: int) -> Iterator[tuple[str, list[FileRow]]]:
    """(repo, its files) in input order; fails when a repository's rows are not contiguous."""
    seen: set[str] = set()
    current, files, row = None, [], 0
    for batch in io.iter_parquet_batches(url, columns=["repo", "path", "content", "stars"], batch_size=batch_rows):
        cols = [batch.column(i).to_pylist() for i in range(4)]
        for repo, path, content, stars in zip(*cols):
            if repo is None or path is None:
                raise InputError(f"{url}: row {row} has no repo or path")
            if repo != current:
                if current is not None:
                    yield current, files
                if repo in seen:
                    raise InputError(
                        f"{url}: rows of repository {repo!r} are not contiguous "
                        "(validate writes files sorted by (repo, path))"
                    )
                seen.add(repo)
                current, files = repo, []
            files.append((row, path, content, stars))
            row += 1
    if current is not None:
        yield current, files


def _sign_file(config: DedupConfig, hasher: MinHasher, url: str, output: str) -> Counter:
    name = input_name(url)
    signatures: list[np.ndarray] = []
    shingle_sets: list[np.ndarray] = []
    repos: dict[str, list] = {k: [] for k in ("repo", "files", "bytes", "stars", "shingles")}
    files: dict[str, list] = {k: [] for k in ("repo_index", "path", "hash", "size", "row")}
    counts: Counter = Counter()
    for repo, rows in tqdm(
        _repositories(url, config.batch_rows), desc=f"dedup signatures {name}", unit="repo", mininterval=2.0
    ):
        rows.sort(key=lambda r: (r[1], r[0]))
        encoded = [(content or "").encode("utf-8") for _, _, content, _ in rows]
        signature, shingles, *distinct = hasher.signature(b"\n".join(encoded), keep_shingles=config.check == "exact")
        signatures.append(signature)
        shingle_sets.extend(distinct)
        stars = [s for *_, s in rows if s is not None]
        for (row, path, content, _), data in zip(rows, encoded):
            files["repo_index"].append(len(repos["repo"]))
            files["path"].append(path)
            files["hash"].append(content_hash(content))
            files["size"].append(len(data))
            files["row"].append(row)
        for key, value in (
            ("repo", repo),
            ("files", len(rows)),
            ("bytes", sum(map(len, encoded))),
            ("stars", max(stars) if stars else None),
            ("shingles", shingles),
        ):
            repos[key].append(value)
        counts.update(
            input_repos=1,
            input_files=len(rows),
            input_bytes=repos["bytes"][-1],
            repos_without_shingles=int(shingles == 0),
        )
    _save(config, output, name, signatures, shingle_sets, repos, files)
    return counts


def _save(
    config: DedupConfig, output: str, name: str, signatures: list, shingle_sets: list, repos: dict, files: dict
) -> None:
    matrix = np.stack(signatures, axis=1) if signatures else np.empty((config.num_perm, 0), dtype=np.uint64)
    save_array(work_url(output, "signatures", name, ".npy"), matrix)
    if config.check == "exact":
        ends = np.cumsum([len(s) for s in shingle_sets], dtype=np.int64)
        repos["shingle_end"] = ends.tolist()
        repos["shingle_start"] = (ends - np.array([len(s) for s in shingle_sets], dtype=np.int64)).tolist()
        flat = np.concatenate(shingle_sets) if shingle_sets else np.empty(0, dtype=np.uint64)
        save_array(work_url(output, "shingles", name, ".npy"), flat)
    repo_schema = pa.schema(
        [
            ("repo", pa.string()),
            ("files", pa.int64()),
            ("bytes", pa.int64()),
            ("stars", pa.int64()),
            ("shingles", pa.int64()),
        ]
        + ([("shingle_start", pa.int64()), ("shingle_end", pa.int64())] if config.check == "exact" else [])
    )
    io.write_parquet(pa.Table.from_pydict(repos, schema=repo_schema), work_url(output, "repos", name, ".parquet"))
    file_schema = pa.schema(
        [
            ("repo_index", pa.int64()),
            ("path", pa.string()),
            ("hash", pa.string()),
            ("size", pa.int64()),
            ("row", pa.int64()),
        ]
    )
    io.write_parquet(pa.Table.from_pydict(files, schema=file_schema), work_url(output, "files", name, ".parquet"))

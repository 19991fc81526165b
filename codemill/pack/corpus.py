"""Reading dedup's output: which shards exist, which repositories go where, their files.

The plan is made once (by the tokenizer step) and read by every shard, so all shards
agree on the held-out repositories and on which repositories each shard packs:

- held out: ``max(1, round(val_fraction * repos))`` repositories (none with fewer than
  two, or ``val_fraction`` 0), drawn with the seed; never single files, so no repository
  is seen in training and validation both;
- shard ``rank`` of ``world_size`` packs every ``world_size``-th repository of the
  sorted list, so a repository is always packed whole (its dependency graph needs it).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codemill import io
from codemill.records import FileRecord
from codemill.stage import InputError

COLUMNS = ["repo", "path", "content", "language"]


def input_urls(input: str) -> list[str]:
    """dedup's ``files/*.parquet`` under ``input`` (or ``input`` itself when it names Parquet)."""
    direct = input.endswith(".parquet") or any(c in input for c in "*?[")
    urls = io.expand(input if direct else io.join(input, "files", "*.parquet"))
    if not urls:
        where = input if direct else io.join(input, "files", "*.parquet")
        raise InputError(f"{where}: no Parquet shards found (pack reads dedup's output folder)")
    for url in urls:
        missing = [c for c in COLUMNS if c not in io.parquet_schema(url).names]
        if missing:
            raise InputError(f"{url}: missing column(s) {', '.join(missing)} (expected records.FILE_SCHEMA)")
    return urls


def list_repos(urls: list[str]) -> tuple[list[str], int]:
    """All repositories (sorted) and the total bytes of their files."""
    repos: set[str] = set()
    total = 0
    for url in urls:
        table = io.read_parquet(url, columns=["repo", "size"] if "size" in io.parquet_schema(url).names else ["repo"])
        repos.update(r for r in table.column("repo").to_pylist() if r)
        if "size" in table.column_names:
            total += int(pc.sum(table.column("size")).as_py() or 0)
    return sorted(repos), total


def make_plan(urls: list[str], val_fraction: float, seed: int) -> dict:
    repos, total_bytes = list_repos(urls)
    if not repos:
        raise InputError(f"{urls[0]}: the input holds no repositories")
    n_val = 0
    if len(repos) >= 2 and val_fraction > 0:
        n_val = min(len(repos) - 1, max(1, round(val_fraction * len(repos))))
    order = np.random.default_rng([seed, 1]).permutation(len(repos))
    heldout = sorted(repos[i] for i in order[:n_val])
    return {"inputs": urls, "repos": repos, "heldout": heldout, "total_bytes": total_bytes}


def shard_repos(plan: dict, rank: int, world_size: int) -> list[str]:
    return plan["repos"][rank::world_size]


def stable_hash(text: str) -> int:
    """A process-independent 63-bit hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def read_repos(urls: list[str], repos: list[str], skipped: Counter) -> dict[str, list[FileRecord]]:
    """The files of ``repos``, grouped by repository and sorted by path.

    Record-level problems are counted in ``skipped`` by reason: a missing path, empty
    content, or a second copy of the same (repo, path) (the first one read is kept). A
    missing language is not a problem: documents fall back to the file extension.
    """
    wanted = pa.array(repos, type=pa.string())
    out: dict[str, dict[str, FileRecord]] = {r: {} for r in repos}
    for url in urls:
        table = io.read_parquet(url, columns=COLUMNS)
        table = table.filter(pc.is_in(table.column("repo"), value_set=wanted))
        cols = {c: table.column(c).to_pylist() for c in COLUMNS}
        for repo, path, content, language in zip(*(cols[c] for c in COLUMNS)):
            if not path:
                skipped["missing_path"] += 1
            elif not content or not content.strip():
                skipped["empty_content"] += 1
            elif path in out[repo]:
                skipped["duplicate_path"] += 1
            else:
                out[repo][path] = FileRecord(repo=repo, path=path, content=content, language=language or "")
    return {r: [files[p] for p in sorted(files)] for r, files in out.items() if files}


def sample_texts(plan: dict, budget_bytes: int, seed: int) -> Iterator[tuple[str, str, str, str]]:
    """(repo, path, language, content) of training-split files, a seeded sample of about
    ``budget_bytes`` (every file when the corpus is smaller)."""
    heldout = set(plan["heldout"])
    keep = min(1.0, budget_bytes / plan["total_bytes"]) if plan["total_bytes"] else 1.0
    for url in plan["inputs"]:
        for batch in io.iter_parquet_batches(url, columns=COLUMNS):
            cols = [batch.column(c).to_pylist() for c in COLUMNS]
            for repo, path, content, language in zip(*cols):
                if not repo or repo in heldout or not content or not path:
                    continue
                if keep < 1.0 and stable_hash(f"{seed}/{repo}/{path}") / 2**63 >= keep:
                    continue
                yield repo, path, language or "", content

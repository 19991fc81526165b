"""Where validate's input comes from, as one stream of :class:`Candidate` records.

A source is one of:

- ``site-packages``: every installed distribution is a repository (``name==version``),
  its files listed by ``.dist-info/RECORD`` (see :mod:`.repos`);
- a folder (local or ``s3://`` prefix) whose subfolders are repositories;
- JSONL(.gz) / Parquet files in The Stack's layout, one row per file, as a URL that may
  hold globs (see :mod:`.tabular`).

Sharding: a record belongs to shard ``stable_hash(repo) % world_size``, so a repository's
files stay together; a record whose repository cannot be read (a malformed line) is
placed by the hash of its location. Every shard sees the same list and keeps its part.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from codemill.validate.config import ValidateConfig

TABULAR_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz", ".parquet")
SITE_PACKAGES = "site-packages"


@dataclass(slots=True)
class Candidate:
    """One input record before any check: what could be read of it and where it came from."""

    source: str  # file URL, with ":line" (JSONL) or "#row" (Parquet) where it applies
    repo: str | None = None
    path: str | None = None
    data: bytes | str | None = None  # file bytes (files) or decoded text (tabular rows)
    size: int | None = None  # full size in bytes when known (data may be truncated when too large)
    language: str | None = None  # a label the source gave, if any
    license: str | None = None
    stars: int | None = None
    problem: tuple[str, str] | None = None  # (reason, detail) found while reading
    raw: str | None = None  # the record as read, when it is not just the file content


@dataclass
class SourceInfo:
    """What a shard learned about its source besides the records (reported in stats.json)."""

    kind: str = ""
    selection: dict | None = None  # the repository selection, identical in every shard
    skipped_files: Counter | None = None  # this shard's files never read, by why (binary name, skipped dir)


def shard_of(key: str, world_size: int) -> int:
    """A stable shard for a key (no Python hash randomisation)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % world_size


def source_kind(source: str) -> str:
    if source == SITE_PACKAGES:
        return "site-packages"
    if any(c in source for c in "*?[") or source.lower().endswith(TABULAR_SUFFIXES):
        return "tabular"
    return "folder"


def read_source(
    source: str, config: ValidateConfig, rank: int, world_size: int, info: SourceInfo
) -> Iterator[Candidate]:
    """This shard's candidates from the source, in a deterministic order."""
    from codemill.validate import repos as _repos
    from codemill.validate import tabular as _tabular

    info.kind = source_kind(source)
    info.skipped_files = Counter()
    if info.kind == "tabular":
        return _tabular.read_tabular(source, config, rank, world_size)
    beside = None
    if info.kind == "site-packages":
        repos = _repos.site_packages_repos(config)
    else:
        repos, beside = _repos.folder_repos(source, config)
    picked, info.selection = _repos.select(repos, config, source)
    if beside is not None:  # files at the source's top level: in no repository, never read
        info.selection["files_beside_repos"] = beside
    mine = [r for r in picked if shard_of(r.id, world_size) == rank]
    for repo in mine:
        info.skipped_files.update(repo.skipped)
    return _repos.read_repos(mine, config)

"""Small real corpora for the dedup tests: installed packages as repositories, plus forks
made from them (files removed/added, identifiers renamed, whitespace changed)."""

from __future__ import annotations

import os
import re
import sysconfig

from codemill import io
from codemill.records import FILE_SCHEMA, FileRecord, to_table

SITE = sysconfig.get_paths()["purelib"]

Repo = dict[str, str]  # path -> content


def package_repo(package: str, max_files: int = 40, max_bytes: int = 60_000) -> Repo:
    """The first .py files (sorted) of an installed package, each under max_bytes."""
    root = os.path.join(SITE, package)
    files: Repo = {}
    for dirpath, dirnames, names in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(names):
            if not name.endswith(".py") or len(files) >= max_files:
                continue
            path = os.path.join(dirpath, name)
            if os.path.getsize(path) > max_bytes:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                files[os.path.relpath(path, SITE)] = f.read()
    assert files, f"no Python files under {root}"
    return files


def drop_files(repo: Repo, every: int) -> Repo:
    """A fork without every `every`-th file."""
    return {p: c for i, (p, c) in enumerate(sorted(repo.items())) if i % every != every - 1}


def rename_identifier(repo: Repo, old: str, new: str) -> Repo:
    pattern = re.compile(rf"\b{re.escape(old)}\b")
    return {p: pattern.sub(new, c) for p, c in repo.items()}


def reindent(repo: Repo) -> Repo:
    """Tabs for four spaces, CRLF line ends, trailing blanks: the same tokens, other bytes."""
    return {p: c.replace("    ", "\t").replace("\n", "  \r\n") for p, c in repo.items()}


def records(repos: dict[str, Repo], stars: dict[str, int] | None = None) -> list[FileRecord]:
    out = []
    for name in sorted(repos):
        for path in sorted(repos[name]):
            out.append(
                FileRecord(
                    repo=name,
                    path=path,
                    content=repos[name][path],
                    language="python",
                    stars=(stars or {}).get(name),
                    source=f"test:{name}/{path}",
                ).finalize()
            )
    return out


def write_input(folder: str, repos: dict[str, Repo], shards: int = 1, stars: dict[str, int] | None = None) -> str:
    """validate-like output: files/shard-*.parquet, each repository whole in one shard."""
    names = sorted(repos)
    for s in range(shards):
        mine = {n: repos[n] for i, n in enumerate(names) if i % shards == s}
        url = io.join(folder, "files", f"shard-{s:05d}-of-{shards:05d}.parquet")
        io.write_parquet(to_table(records(mine, stars), FILE_SCHEMA), url)
    return folder


def read_kept(output: str) -> list[tuple[str, str]]:
    rows = []
    for url in io.expand(io.join(output, "files", "*.parquet")):
        table = io.read_parquet(url, columns=["repo", "path"])
        rows += list(zip(table.column("repo").to_pylist(), table.column("path").to_pylist()))
    return sorted(rows)

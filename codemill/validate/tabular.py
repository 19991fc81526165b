"""JSONL and Parquet sources in The Stack's layout: one row per file.

Required columns: repository, path, content (names configurable); optional: language,
license, stars. Whole-input problems fail before any record is read: a pattern that
matches nothing, a file of another format, a Parquet file without the required columns
(the message names the file, the expected and the found columns), a ``.gz`` file that is
not gzip or is cut short (found while streaming it; the shard then fails before writing
anything). Row problems are
record-level: a malformed JSON line (quarantined with file and line number), a missing
field, content that is not UTF-8 (JSONL lines are decoded with ``surrogateescape`` so
the bad bytes reach the UTF-8 check instead of failing the whole line).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from codemill import io
from codemill.records import RAW_LIMIT
from codemill.stage import InputError
from codemill.validate.config import ValidateConfig
from codemill.validate.sources import TABULAR_SUFFIXES, Candidate, shard_of


def tabular_files(source: str) -> list[str]:
    urls = io.expand(source)
    if not urls:
        raise InputError(f"{source}: no files matched")
    odd = [u for u in urls if not u.lower().endswith(TABULAR_SUFFIXES)]
    if odd:
        raise InputError(
            f"{source}: {odd[0]} is neither JSONL nor Parquet (expected one of {', '.join(TABULAR_SUFFIXES)})"
        )
    return urls


def _columns(config: ValidateConfig) -> tuple[list[str], list[str]]:
    required = [config.repo_column, config.path_column, config.content_column]
    optional = [config.language_column, config.license_column, config.stars_column]
    return required, optional


def check_parquet_columns(url: str, config: ValidateConfig) -> list[str]:
    """The columns to read from a Parquet file; fails naming expected and found columns."""
    found = io.parquet_schema(url).names
    required, optional = _columns(config)
    missing = [c for c in required if c not in found]
    if missing:
        raise InputError(
            f"{url}: missing required column(s) {missing}; expected {required} (optional {optional}), found {found}"
        )
    return required + [c for c in optional if c in found]


def _stars(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _license(value: Any) -> str | None:
    if isinstance(value, list):  # The Stack keeps a list of detected licenses
        return ",".join(str(v) for v in value) or None
    return str(value) if value not in (None, "") else None


def _field_problems(config: ValidateConfig, repo: Any, path: Any, content: Any) -> list[str]:
    problems = []
    for name, value, types in (
        (config.repo_column, repo, str),
        (config.path_column, path, str),
        (config.content_column, content, (str, bytes)),
    ):
        if value is None:
            problems.append(f"{name} is missing")
        elif not isinstance(value, types):
            problems.append(f"{name} is a {type(value).__name__}, not text")
        elif not value and name != config.content_column:  # empty content is its own reason
            problems.append(f"{name} is empty")
    return problems


def row_candidate(row: dict, location: str, config: ValidateConfig) -> Candidate:
    """A candidate from one row; missing or mistyped required fields become its problem."""
    repo, path, content = (row.get(c) for c in _columns(config)[0])
    language = row.get(config.language_column)
    candidate = Candidate(
        source=location,
        repo=repo if isinstance(repo, str) and repo else None,
        path=path if isinstance(path, str) and path else None,
        data=content if isinstance(content, (str, bytes)) else None,
        language=language if isinstance(language, str) and language else None,
        license=_license(row.get(config.license_column)),
        stars=_stars(row.get(config.stars_column)),
    )
    problems = _field_problems(config, repo, path, content)
    if problems:
        candidate.problem = ("missing_field", "; ".join(problems))
    if isinstance(content, str):
        candidate.size = len(content.encode("utf-8", "surrogatepass"))
    elif isinstance(content, bytes):
        candidate.size = len(content)
    return candidate


def _shard_key(candidate: Candidate) -> str:
    return candidate.repo if candidate.repo else candidate.source


def _lines(url: str) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of a JSONL(.gz) file; a corrupt or truncated file fails naming it."""
    with io.open_url(url, "rb") as fh:
        stream = gzip.GzipFile(fileobj=fh) if url.lower().endswith(".gz") else fh
        try:
            yield from enumerate(stream, 1)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"{url}: not a readable gzip/JSONL file: {e}") from e


def read_jsonl(url: str, config: ValidateConfig, rank: int, world_size: int) -> Iterator[Candidate]:
    for lineno, line in _lines(url):
        if not line.strip():
            continue  # blank lines are not records
        location = f"{url}:{lineno}"
        text = line.decode("utf-8", "surrogateescape")
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        except ValueError as e:
            if shard_of(location, world_size) == rank:
                yield Candidate(
                    source=location,
                    problem=("malformed_json", f"{location}: {e}"),
                    size=len(line),
                    raw=text[:RAW_LIMIT],
                )
            continue
        candidate = row_candidate(row, location, config)
        if shard_of(_shard_key(candidate), world_size) == rank:
            candidate.raw = text[:RAW_LIMIT]
            yield candidate


def read_parquet(
    url: str, columns: list[str], config: ValidateConfig, rank: int, world_size: int
) -> Iterator[Candidate]:
    repo_shards: dict[str, int] = {}  # computed once per repository

    def shard(repo: Any, row: int) -> int:
        if not isinstance(repo, str) or not repo:
            return shard_of(f"{url}#{row}", world_size)
        if repo not in repo_shards:
            repo_shards[repo] = shard_of(repo, world_size)
        return repo_shards[repo]

    offset = 0
    for batch in io.iter_parquet_batches(url, columns=columns):
        repos = batch.column(config.repo_column).to_pylist()
        mine = [i for i, repo in enumerate(repos) if shard(repo, offset + i) == rank]
        rows = batch.take(pa.array(mine, type=pa.int64())).to_pylist() if mine else []
        for i, row in zip(mine, rows):
            yield row_candidate(row, f"{url}#{offset + i}", config)
        offset += batch.num_rows


def read_tabular(source: str, config: ValidateConfig, rank: int, world_size: int) -> Iterator[Candidate]:
    """Checks every file's format and schema now (fail fast), then streams the rows."""
    urls = tabular_files(source)
    parquet_columns = {url: check_parquet_columns(url, config) for url in urls if url.lower().endswith(".parquet")}

    def rows() -> Iterator[Candidate]:
        for url in urls:
            if url in parquet_columns:
                yield from read_parquet(url, parquet_columns[url], config, rank, world_size)
            else:
                yield from read_jsonl(url, config, rank, world_size)

    return rows()

"""Typed records that flow between stages, and their Parquet schemas.

validate writes :class:`FileRecord` rows under ``files/``; dedup reads and writes the
same schema; pack reads it. Quarantined input goes out as :class:`QuarantineRecord`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa


@dataclass(slots=True)
class FileRecord:
    """One source file of one repository, as accepted by validate."""

    repo: str
    path: str
    content: str
    language: str
    size: int = 0  # bytes of UTF-8 content
    sha256: str = ""
    license: str | None = None
    stars: int | None = None
    source: str = ""  # where it was read from (file URL, with line/row when known)
    redactions: int = 0  # secrets replaced by placeholders in `content`

    def finalize(self) -> FileRecord:
        """Fill size and sha256 from the (possibly redacted) content."""
        data = self.content.encode("utf-8")
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        return self


FILE_SCHEMA = pa.schema(
    [
        ("repo", pa.string()),
        ("path", pa.string()),
        ("content", pa.large_string()),
        ("language", pa.string()),
        ("size", pa.int64()),
        ("sha256", pa.string()),
        ("license", pa.string()),
        ("stars", pa.int64()),
        ("source", pa.string()),
        ("redactions", pa.int32()),
    ]
)


@dataclass(slots=True)
class QuarantineRecord:
    """An input record that was not kept, with the reason and what could be read of it."""

    reason: str  # machine-readable, e.g. "malformed_json", "too_large", "contaminated"
    detail: str  # human-readable, names the offending value or threshold
    source: str  # file URL, with ":line" or "#row" where known
    repo: str | None = None
    path: str | None = None
    language: str | None = None
    raw: str | None = None  # the original record as far as it could be read (truncated)


QUARANTINE_SCHEMA = pa.schema(
    [
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("source", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("raw", pa.large_string()),
    ]
)

RAW_LIMIT = 64 * 1024  # keep at most this many characters of a quarantined record


def to_table(records: Iterable, schema: pa.Schema) -> pa.Table:
    """Build an Arrow table from dataclass records (column-wise, no pandas)."""
    names = schema.names
    columns: dict[str, list] = {n: [] for n in names}
    for r in records:
        for n in names:
            columns[n].append(getattr(r, n))
    return pa.Table.from_pydict(columns, schema=schema)

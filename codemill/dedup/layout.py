"""Where dedup reads and writes: its input files, their assignment to shards, and the
intermediate files under ``<output>/_work/`` that carry work from one step to the next.

Every intermediate file is keyed by the *input file's name*, never by the shard that
wrote it, so a run with any ``world_size`` produces the same files (and the cluster step
orders repositories by input name, then by position in the file).
"""

from __future__ import annotations

import io as _pyio
import os

import numpy as np

from codemill import io
from codemill.records import FILE_SCHEMA
from codemill.stage import InputError

STAGE = "dedup"
SIGNATURE, CLUSTER, WRITE = "dedup-signature", "dedup-cluster", "dedup-write"


def input_files(input: str) -> list[str]:
    """The Parquet files of validate's output folder (``<input>/files/*.parquet``).

    A URL that is itself a ``.parquet`` file or a glob is taken as given.
    """
    if input.endswith(".parquet") or any(c in input for c in "*?["):
        urls = io.expand(input)
    else:
        urls = io.expand(io.join(input, "files", "*.parquet"))
    if not urls:
        raise InputError(f"{input}: no Parquet files found (expected validate's output folder with files/*.parquet)")
    names = [input_name(u) for u in urls]
    if len(set(names)) != len(names):
        raise InputError(f"{input}: input file names must be unique (dedup keys its work by name): {names}")
    return urls


def input_name(url: str) -> str:
    base = url.rstrip("/").rsplit("/", 1)[-1]
    return base[: -len(".parquet")] if base.endswith(".parquet") else base


def assigned(urls: list[str], rank: int, world_size: int) -> list[str]:
    """This shard's input files: every world_size-th file, starting at rank."""
    return [u for i, u in enumerate(urls) if i % world_size == rank]


def check_input_schema(url: str) -> None:
    have = set(io.parquet_schema(url).names)
    missing = [n for n in FILE_SCHEMA.names if n not in have]
    if missing:
        raise InputError(f"{url}: not a files shard of validate: missing columns {missing}")


# ---------------------------------------------------------------------------- _work/


def work_url(output: str, kind: str, name: str, suffix: str) -> str:
    return io.join(output, "_work", kind, name + suffix)


def save_array(url: str, array: np.ndarray) -> None:
    buf = _pyio.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    io.write_bytes(url, buf.getvalue())


def load_array(url: str) -> np.ndarray:
    """Memory-mapped when local (pages are read as they are touched), else read whole."""
    if not io.is_s3(url):
        path = io.local_path(url)
        if not os.path.exists(path):
            raise io.StorageError(f"{url}: missing (did every signature shard finish?)")
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return np.load(_pyio.BytesIO(io.read_bytes(url)), allow_pickle=False)

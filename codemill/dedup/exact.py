"""Exact file dedup across the repositories that survive near-dedup.

Two files are copies when their *normalized* content is equal: line endings unified to
``\\n``, trailing spaces and tabs dropped from every line, blank lines at the start and
end dropped. The hash is BLAKE2b-128 of that text (collisions are negligible at any
corpus size).

Of each set of copies, the copy in the best repository stays: most stars, then most
files, then the repository name (then the path) in byte order. Every copy in that
repository stays, so a repository never loses a file it holds twice; copies elsewhere go,
each recorded with the copy that was kept and the criterion that decided.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)")


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_SPACE.sub("", text + "\n").strip("\n")


def content_hash(text: str | None) -> str:
    """Hex BLAKE2b-128 of the normalized text (None counts as empty)."""
    return hashlib.blake2b(normalize(text or "").encode("utf-8"), digest_size=16).hexdigest()


def repo_preference(stars: np.ndarray, files: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Rank of every repository under the keep rule (0 = most preferred); ``names`` may be
    the names or any array that sorts like them."""
    order = np.lexsort((names, -files, -stars))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def deciding_criterion(stars: np.ndarray, files: np.ndarray, kept: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Per dropped copy, which criterion of the rule put the kept copy's repository first."""
    return np.where(stars[kept] != stars[dropped], "stars", np.where(files[kept] != files[dropped], "files", "name"))


def find_copies(files: pa.Table, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies to drop: (positions of dropped files, positions of the copy kept for each).

    ``files`` has repo_index, hash and path per file of a surviving repository; ``rank``
    is every repository's place under the keep rule (:func:`repo_preference`). Positions
    are row numbers of ``files``.
    """
    n = files.num_rows
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    table = pa.table(
        {
            "hash": files.column("hash"),
            "path": files.column("path"),
            "rank": pa.array(rank[files.column("repo_index").to_numpy()]),
            "position": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    table = table.sort_by([("hash", "ascending"), ("rank", "ascending"), ("path", "ascending")])
    hashes = table.column("hash")
    first_of_hash = np.ones(n, dtype=bool)
    if n > 1:
        first_of_hash[1:] = pc.not_equal(hashes.slice(1), hashes.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    first = np.maximum.accumulate(np.where(first_of_hash, np.arange(n), 0))
    ranks = table.column("rank").to_numpy()
    dropped = np.flatnonzero(ranks != ranks[first])  # a copy outside the best repository holding it
    position = table.column("position").to_numpy()
    return position[dropped], position[first[dropped]]

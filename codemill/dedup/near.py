"""Near-duplicate repositories: LSH bands over MinHash signatures, union-find over candidates.

One band at a time: each repository's ``rows`` values of the band are hashed into one
64-bit key (64 bits, so unrelated bands practically never collide); sorting the keys
puts the repositories that share the band next to each other, and each is paired with
the first (smallest index) of its run. Those star-shaped pairs connect exactly the
repositories a full pairing would, without all-pairs work. Pairs already in one set are
skipped, the rest are confirmed by a check and merged by :class:`UnionFind`. Memory: one
band of every repository (``8 * rows`` bytes each) plus a few int64 arrays per
repository, never the text.

Checks (``DedupConfig.check``): ``none`` merges every candidate; ``estimate`` merges a
pair when the fraction of equal values of the two full signatures (the MinHash estimate
of their Jaccard, standard error ~0.03 at 0.7 with 256 permutations) reaches the
threshold, which turns the LSH S-curve into a much sharper step; ``exact`` merges it
when the exact Jaccard of the stored shingle sets does (each pair computed once).

In each resulting set the most complete repository is kept: most files, then most
bytes, then the smallest name.
"""

from __future__ import annotations

import numpy as np

from codemill.dedup.minhash import estimated_jaccard, lane_weights, mix64
from codemill.dedup.unionfind import UnionFind


class Signatures:
    """The band-major signature matrices of all input files, as one [num_perm, repos] view."""

    def __init__(self, matrices: list[np.ndarray]):
        self.matrices = matrices
        self.offsets = np.cumsum([0] + [m.shape[1] for m in matrices])

    @property
    def count(self) -> int:
        return int(self.offsets[-1])

    def band(self, start: int, rows: int) -> np.ndarray:
        return np.concatenate([np.asarray(m[start : start + rows]) for m in self.matrices], axis=1)

    def columns(self, index: np.ndarray) -> np.ndarray:
        """Full signatures of the given repositories, [num_perm, len(index)]."""
        out = np.empty((self.matrices[0].shape[0] if self.matrices else 0, len(index)), dtype=np.uint64)
        which = np.searchsorted(self.offsets, index, side="right") - 1
        for f, matrix in enumerate(self.matrices):
            mine = np.flatnonzero(which == f)
            if len(mine):
                out[:, mine] = matrix[:, index[mine] - self.offsets[f]]
        return out


def band_keys(values: np.ndarray) -> np.ndarray:
    """One 64-bit key per column of a [rows, n] band."""
    weights = lane_weights(values.shape[0])
    key = values[0] * weights[0]
    for j in range(1, values.shape[0]):
        key += values[j] * weights[j]
    return mix64(key)


def candidate_pairs(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first of run, other member) for every run of equal keys; ids must be ascending."""
    order = np.argsort(keys, kind="stable")
    keys, ids = keys[order], ids[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    first = ids[np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))]
    return first[~starts], ids[~starts]


class EstimateCheck:
    """Confirms pairs whose signatures agree on at least ``threshold`` of their values."""

    def __init__(self, signatures: Signatures, threshold: float):
        self.signatures, self.threshold = signatures, threshold

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        a, b = self.signatures.columns(left), self.signatures.columns(right)
        return estimated_jaccard(a.T, b.T) >= self.threshold


class ExactCheck:
    """Confirms pairs whose sorted distinct shingle hashes have Jaccard >= ``threshold``."""

    def __init__(
        self, shingles: list[np.ndarray], starts: np.ndarray, ends: np.ndarray, offsets: np.ndarray, threshold: float
    ):
        self.shingles, self.starts, self.ends, self.offsets = shingles, starts, ends, offsets
        self.threshold = threshold
        self.known: dict[tuple[int, int], float] = {}

    def _set(self, repo: int) -> np.ndarray:
        f = int(np.searchsorted(self.offsets, repo, side="right") - 1)
        return np.asarray(self.shingles[f][self.starts[repo] : self.ends[repo]])

    def jaccard(self, a: int, b: int) -> float:
        key = (min(a, b), max(a, b))
        if key not in self.known:
            sa, sb = self._set(a), self._set(b)
            common = len(np.intersect1d(sa, sb, assume_unique=True))
            union = len(sa) + len(sb) - common
            self.known[key] = common / union if union else 0.0
        return self.known[key]

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.array([self.jaccard(int(a), int(b)) >= self.threshold for a, b in zip(left, right)], dtype=bool)


def near_duplicate_sets(
    signatures: Signatures, active: np.ndarray, bands: int, rows: int, check=None
) -> tuple[np.ndarray, dict]:
    """The root (smallest member) of every repository's near-duplicate set, and counters.

    ``active``: repositories that take part (those with at least one shingle);
    ``check``: None, or a callable (left, right) -> mask of confirmed pairs.
    """
    sets = UnionFind(signatures.count)
    ids = np.flatnonzero(active)
    counters = {"candidate_pairs": 0, "pairs_rejected": 0}
    for band in range(bands):
        keys = band_keys(signatures.band(band * rows, rows)[:, ids])
        left, right = candidate_pairs(keys, ids)
        new = sets.roots(left) != sets.roots(right)
        left, right = left[new], right[new]
        counters["candidate_pairs"] += len(left)
        if check is not None and len(left):
            confirmed = check(left, right)
            counters["pairs_rejected"] += int((~confirmed).sum())
            left, right = left[confirmed], right[confirmed]
        sets.union(left, right)
    return sets.groups(), counters


def choose_kept(roots: np.ndarray, files: np.ndarray, size: np.ndarray, names: np.ndarray) -> np.ndarray:
    """For every repository, the index of the repository its set keeps.

    ``names``: the names, or any array that sorts like them (their ranks).
    """
    order = np.lexsort((names, -size, -files, roots))
    sorted_roots = roots[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = sorted_roots[1:] != sorted_roots[:-1]
    kept = np.empty(len(order), dtype=np.int64)
    kept[order] = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    return kept

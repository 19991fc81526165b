"""Union-find over repository indices, with every operation vectorized over edge arrays.

``parent[i]`` points towards the root of ``i``'s set; a root points to itself. Unions
always hang the larger root under the smaller, so no cycle can form and the root of a set
is its smallest member, whatever order the edges come in: the result is deterministic.
Finding roots is pointer jumping (``parent = parent[parent]`` until stable), which
compresses every path at once. Memory: one int64 per repository.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def roots(self, items: np.ndarray | None = None) -> np.ndarray:
        """Root of every item (of all items when None), compressing all paths."""
        parent = self.parent
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        self.parent = parent
        return parent if items is None else parent[items]

    def union(self, left: np.ndarray, right: np.ndarray) -> None:
        """Merge the sets of left[k] and right[k] for every k."""
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        while len(left):
            a, b = self.roots(left), self.roots(right)
            apart = a != b
            low, high = np.minimum(a[apart], b[apart]), np.maximum(a[apart], b[apart])
            # Several edges may hook the same root: minimum.at keeps the smallest target,
            # the others are retried from their new roots on the next pass.
            np.minimum.at(self.parent, high, low)
            left, right = low, high

    def groups(self) -> np.ndarray:
        """The root (smallest member) of every item's set."""
        return self.roots().copy()

"""MinHash signatures of repository documents, vectorized with numpy (no per-token Python).

A repository's document is its files' text joined with newlines in path order, encoded
as UTF-8 and lowercased (ASCII). From there everything is arrays of uint64, whose
arithmetic wraps modulo 2**64 in numpy:

1. Tokens are runs of ``[a-z0-9_]`` bytes (BigCode splits on ``[^A-Za-z_0-9]``); non-ASCII
   bytes separate tokens. A lookup table marks token bytes, ``diff`` finds token starts
   and ends.
2. Token hash: a polynomial hash ``sum(byte_j * B**j)`` read off prefix sums, shifted to
   the token's start with powers of ``B``'s inverse, then mixed by splitmix64's finalizer.
3. Shingle hash: ``ngram`` consecutive token hashes, each times its own odd constant,
   summed and mixed again: a 64-bit hash per shingle. A document with fewer tokens than
   ``ngram`` has one shingle holding all of them (as text-dedup does).
4. MinHash: ``num_perm`` permutations ``h_i(x) = a_i * x mod 2**64`` with random odd
   ``a_i`` (a bijection of 64-bit values), the minimum of each over the document's
   distinct shingles, computed block by block as an outer product that stays in cache.
   The shingle hashes are already uniformly mixed, so a multiplier alone gives each
   permutation a random order; an added ``+ b_i`` would cost a third more time and
   changed nothing measurable (estimate error equal to the binomial bound, see
   tests/dedup/test_dedup_minhash.py).

Text is processed in windows of ``chunk_bytes``; a window ends before a token it would
cut, and the last ``ngram - 1`` token hashes carry into the next window, so the result
equals hashing the whole document at once. Only a token longer than a window (a
megabyte without a separator) is split. Working memory is a few arrays of the window's
size plus ``num_perm x block`` values, whatever the document's size.
"""

from __future__ import annotations

import numpy as np

U64 = np.uint64
MAX_HASH = np.iinfo(np.uint64).max

# Token bytes after ASCII lowercasing: [a-z0-9_].
_TOKEN_BYTE = np.zeros(256, dtype=bool)
_TOKEN_BYTE[list(b"abcdefghijklmnopqrstuvwxyz0123456789_")] = True

_BASE = 0x100000001B3  # FNV-64 prime: odd, so invertible modulo 2**64
# Odd multipliers weighting each token of a shingle (the splitmix64/xxhash64 constants,
# extended by golden-ratio steps for shingles longer than the list).
_SHINGLE_WEIGHTS = [
    0x9E3779B97F4A7C15,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53,
    0x27D4EB2F165667C5,
    0x85EBCA77C2B2AE63,
]
_BLOCK = 2048  # shingles per outer-product block: num_perm x 2048 x 8 bytes = 4 MiB at 256


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads every input bit over all 64 output bits."""
    x = x ^ (x >> U64(30))
    x = x * U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> U64(27))
    x = x * U64(0x94D049BB133111EB)
    return x ^ (x >> U64(31))


def _powers(base: int, n: int) -> np.ndarray:
    steps = np.full(n, base, dtype=np.uint64)
    steps[0] = 1
    return np.cumprod(steps, dtype=np.uint64)


def lane_weights(ngram: int) -> np.ndarray:
    """Odd multipliers, one per position, for hashing a sequence of 64-bit values into one."""
    weights = list(_SHINGLE_WEIGHTS)
    while len(weights) < ngram:
        weights.append((weights[-1] + 0x9E3779B97F4A7C15) % (1 << 64) | 1)
    return np.array(weights[:ngram], dtype=np.uint64)


def permutations(num_perm: int, seed: int) -> np.ndarray:
    """The odd multiplier of every permutation, drawn from ``seed`` only."""
    rng = np.random.default_rng([seed, 0x6D696E68])  # second word keeps these apart from other seeded draws
    return rng.integers(0, MAX_HASH, size=num_perm, dtype=np.uint64, endpoint=True) | U64(1)


class MinHasher:
    """Computes a document's MinHash signature (uint64 [num_perm]) and shingle count.

    ``signature(doc)`` takes the document's UTF-8 bytes; ``keep_shingles=True`` also
    returns the sorted distinct shingle hashes (for the exact-Jaccard re-check).
    """

    def __init__(self, num_perm: int = 256, ngram: int = 5, seed: int = 0, chunk_bytes: int = 1 << 20):
        self.num_perm, self.ngram, self.chunk_bytes = num_perm, ngram, chunk_bytes
        self.multipliers = permutations(num_perm, seed)[:, None]
        self._weights = lane_weights(ngram)
        self._pow = _powers(_BASE, chunk_bytes + 1)
        self._inv_pow = _powers(pow(_BASE, -1, 1 << 64), chunk_bytes + 1)
        self._block = np.empty((num_perm, _BLOCK), dtype=np.uint64)

    # ------------------------------------------------------------------ tokens

    def _window_tokens(self, window: np.ndarray, final: bool) -> tuple[np.ndarray, int]:
        """Hashes of the tokens in a window and how many bytes were consumed.

        When the window is not the last one and ends inside a token, that token is left
        for the next window (unless it fills the whole window).
        """
        is_token = _TOKEN_BYTE[window]
        edges = np.diff(is_token.view(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        consumed = len(window)
        if not final and len(starts) and ends[-1] == len(window) and starts[-1] > 0:
            consumed = int(starts[-1])
            starts, ends = starts[:-1], ends[:-1]
        prefix = np.zeros(len(window) + 1, dtype=np.uint64)
        np.cumsum(window * self._pow[: len(window)], out=prefix[1:])
        return mix64((prefix[ends] - prefix[starts]) * self._inv_pow[starts]), consumed

    def _shingles(self, tokens: np.ndarray, width: int) -> np.ndarray:
        count = len(tokens) - width + 1
        acc = tokens[:count] * self._weights[0]
        for j in range(1, width):
            acc += tokens[j : j + count] * self._weights[j]
        return mix64(acc)

    # ------------------------------------------------------------------ MinHash

    def _update(self, signature: np.ndarray, shingles: np.ndarray) -> None:
        for i in range(0, len(shingles), _BLOCK):
            part = shingles[i : i + _BLOCK]
            block = self._block[:, : len(part)]
            np.multiply(self.multipliers, part[None, :], out=block)
            np.minimum(signature, block.min(axis=1), out=signature)

    def signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray:
        """The signature of a set given as 64-bit hashes (e.g. to study the estimator)."""
        signature = np.full(self.num_perm, MAX_HASH, dtype=np.uint64)
        self._update(signature, np.asarray(shingles, dtype=np.uint64))
        return signature

    def signature(self, doc: bytes, keep_shingles: bool = False):
        """(signature, shingle count[, sorted distinct shingle hashes]) of one document.

        The count includes repeats. A document without tokens has no shingles and the
        all-ones signature.
        """
        data = np.frombuffer(doc.lower(), dtype=np.uint8)
        signature = np.full(self.num_perm, MAX_HASH, dtype=np.uint64)
        carry = np.empty(0, dtype=np.uint64)  # the last ngram-1 token hashes seen
        kept: list[np.ndarray] = []
        tokens_seen = start = 0
        while start < len(data):
            end = min(start + self.chunk_bytes, len(data))
            tokens, consumed = self._window_tokens(data[start:end], final=end == len(data))
            start += consumed
            tokens_seen += len(tokens)
            tokens = np.concatenate([carry, tokens])
            if len(tokens) >= self.ngram:
                distinct = sorted_distinct(self._shingles(tokens, self.ngram))
                self._update(signature, distinct)
                if keep_shingles:
                    kept.append(distinct)
            carry = tokens[len(tokens) - min(len(tokens), self.ngram - 1) :]
        if 0 < tokens_seen < self.ngram:  # too short for one full shingle: one shingle of all tokens
            kept = [self._shingles(carry, len(carry))]
            self._update(signature, kept[0])
        count = max(tokens_seen - self.ngram + 1, 1) if tokens_seen else 0
        if not keep_shingles:
            return signature, count
        shingles = sorted_distinct(np.concatenate(kept)) if kept else np.empty(0, dtype=np.uint64)
        return signature, count, shingles


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values. np.unique is ~100x slower on uint64 in numpy 2.4 (hash-based path)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal MinHash values: the unbiased Jaccard estimate (row-wise for 2-D)."""
    return np.mean(np.asarray(sig_a) == np.asarray(sig_b), axis=-1)

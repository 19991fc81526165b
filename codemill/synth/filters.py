"""The two checks after verification: decontamination and deduplication (docs/synth.md).

- :class:`Contamination`: validate's n-gram rules (``Decontaminator``: a shared
  ``ngram``-token window, or the whole of a benchmark string of ``min_tokens`` to ``ngram``
  tokens) plus Magicoder's rule: a benchmark string of at least ``SUBSTRING_MIN_CHARS``
  characters that occurs, lowercased, as a substring of the lowercased sample.
- :class:`Dedup`: exact (SHA-256 of the text with whitespace runs collapsed) and near
  (MinHash from dedup's ``MinHasher``, 5-gram shingles, LSH with ``BANDS`` bands, each
  candidate re-checked with ``estimated_jaccard`` >= threshold). The first sample in run
  order is kept; later copies are duplicates of it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from codemill.dedup.minhash import MinHasher, estimated_jaccard
from codemill.validate.decontam import Decontaminator, load_benchmarks

SUBSTRING_MIN_CHARS = 20  # shorter benchmark strings ("return x") are left to the token rules
NUM_PERM, BANDS = 128, 32  # 4 rows a band: a pair at Jaccard 0.8 shares a band with probability ~1


class Contamination:
    def __init__(self, paths: list[str], fields: list[str], ngram: int = 10, min_tokens: int = 3):
        texts = load_benchmarks(paths, fields) if paths else []
        self.ngrams = Decontaminator(texts, ngram, min_tokens) if texts else None
        self.substrings = sorted(
            {(t.text.strip().lower(), t.task_id) for t in texts if len(t.text.strip()) >= SUBSTRING_MIN_CHARS}
        )
        self.benchmarks = len({t.task_id for t in texts})

    def find(self, text: str) -> str | None:
        """Why ``text`` is contaminated (naming the benchmark task and the rule), or None."""
        if self.ngrams is not None:
            hit = self.ngrams.find(text)
            if hit:
                return f"shares {hit[1][:80]!r} with {hit[0]} (n-gram rule)"
        lowered = text.lower()
        for needle, task_id in self.substrings:
            if needle in lowered:
                return f"contains {task_id}'s text {needle[:60]!r} (substring rule)"
        return None


def normalized_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


class Dedup:
    def __init__(self, threshold: float, seed: int):
        self.threshold = threshold
        self.hasher = MinHasher(num_perm=NUM_PERM, ngram=5, seed=seed)
        self.exact: dict[str, str] = {}  # normalised key -> id of the kept sample
        self.buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        self.signatures: list[np.ndarray] = []
        self.ids: list[str] = []

    def check(self, sample_id: str, text: str) -> str | None:
        """None when ``text`` is new (it is then remembered), else why it is a duplicate."""
        key = normalized_key(text)
        if key in self.exact:
            return f"same text as {self.exact[key]} (after whitespace normalisation)"
        signature, _ = self.hasher.signature(text.encode("utf-8"))
        rows = NUM_PERM // BANDS
        bands = [(b, signature[b * rows : (b + 1) * rows].tobytes()) for b in range(BANDS)]
        candidates = sorted({i for band in bands for i in self.buckets.get(band, [])})
        if candidates:
            similar = estimated_jaccard(np.stack([self.signatures[i] for i in candidates]), signature)
            best = int(np.argmax(similar))
            if similar[best] >= self.threshold:
                return f"near-duplicate of {self.ids[candidates[best]]} (estimated Jaccard {similar[best]:.2f})"
        self.exact[key] = sample_id
        for band in bands:
            self.buckets[band].append(len(self.ids))
        self.signatures.append(signature)
        self.ids.append(sample_id)
        return None

"""DedupConfig: every knob of the dedup stage, with the BigCode / DeepSeek-Coder defaults,
and the choice of LSH bands for a Jaccard threshold (docs/dedup.md explains each)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codemill.stage import InputError

CHECKS = ("none", "estimate", "exact")


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class DedupConfig:
    """How dedup hashes repositories, finds near-duplicate clusters and exact file copies."""

    seed: int = field(
        default=0,
        metadata=_help("random seed of the MinHash permutations; same input and seed give the same output bytes"),
    )
    ngram: int = field(
        default=5, metadata=_help("shingle size in tokens (tokens are runs of [A-Za-z0-9_], lowercased)")
    )
    num_perm: int = field(default=256, metadata=_help("MinHash permutations (64-bit values each)"))
    threshold: float = field(
        default=0.7, metadata=_help("Jaccard similarity at which two repositories count as near-duplicates")
    )
    bands: int = field(
        default=0, metadata=_help("LSH bands (0 = chosen for the threshold with --rows, see choose_bands)")
    )
    rows: int = field(default=0, metadata=_help("rows (permutations) per LSH band (0 = chosen with --bands)"))
    check: str = field(
        default="estimate",
        metadata=_help(
            "how an LSH candidate pair is confirmed before its repositories are merged: 'none' (every shared "
            "band is a duplicate, as BigCode), 'estimate' (the MinHash estimate of its Jaccard, the fraction "
            "of equal signature values, reaches the threshold), 'exact' (the exact Jaccard of the shingle "
            "sets does; keeps shingles on disk)",
            choices=CHECKS,
        ),
    )
    chunk_bytes: int = field(
        default=1 << 20,
        metadata=_help("bytes of repository text tokenized per numpy step (bounds the working memory of hashing)"),
    )
    batch_rows: int = field(default=256, metadata=_help("Parquet rows read per batch"))
    report_clusters: int = field(default=15, metadata=_help("largest clusters listed in report.md"))

    def ensure_valid(self) -> DedupConfig:
        """Raise InputError naming the field when a value cannot work."""
        if self.ngram < 1:
            raise InputError(f"dedup: ngram must be >= 1, got {self.ngram}")
        if self.num_perm < 1:
            raise InputError(f"dedup: num_perm must be >= 1, got {self.num_perm}")
        if not 0.0 < self.threshold <= 1.0:
            raise InputError(f"dedup: threshold must be in (0, 1], got {self.threshold}")
        if (self.bands == 0) != (self.rows == 0):
            raise InputError(f"dedup: give both bands and rows or neither, got bands={self.bands} rows={self.rows}")
        if self.bands < 0 or self.rows < 0 or self.bands * self.rows > self.num_perm:
            raise InputError(f"dedup: bands x rows must fit in num_perm: {self.bands} x {self.rows} > {self.num_perm}")
        if self.check not in CHECKS:
            raise InputError(f"dedup: check must be one of {CHECKS}, got {self.check!r}")
        if self.chunk_bytes < 1024:
            raise InputError(f"dedup: chunk_bytes must be >= 1024, got {self.chunk_bytes}")
        if self.batch_rows < 1:
            raise InputError(f"dedup: batch_rows must be >= 1, got {self.batch_rows}")
        return self

    def band_layout(self) -> tuple[int, int]:
        """(bands, rows) to use: the configured pair, else the best pair for the threshold.

        Without a check every candidate is a duplicate, so false positives and negatives
        weigh the same (25 x 10 for 0.7 and 256, text-dedup's choice). With a check the
        false positives are removed afterwards, so the bands aim at recall (36 x 7).
        """
        if self.bands and self.rows:
            return self.bands, self.rows
        return choose_bands(self.threshold, self.num_perm, 0.5 if self.check == "none" else 0.95)


def candidate_probability(jaccard: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Chance that two documents with this Jaccard share at least one LSH band."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=np.float64) ** rows) ** bands


def choose_bands(
    threshold: float, num_perm: int, false_negative_weight: float = 0.5, grid: int = 1001
) -> tuple[int, int]:
    """The (bands, rows) with bands * rows <= num_perm minimizing the weighted area of
    false positives (candidate probability below the threshold) plus false negatives (one
    minus it above). Equal weights at 0.7 and 256 permutations give 25 x 10."""
    below = np.linspace(0.0, threshold, grid)
    above = np.linspace(threshold, 1.0, grid)
    best, best_error = (1, num_perm), float("inf")
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        false_pos = np.trapezoid(candidate_probability(below, bands, rows), below)
        false_neg = np.trapezoid(1.0 - candidate_probability(above, bands, rows), above)
        error = (1.0 - false_negative_weight) * false_pos + false_negative_weight * false_neg
        if error < best_error - 1e-12:
            best, best_error = (bands, rows), error
    return best

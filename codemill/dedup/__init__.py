"""The dedup stage: repository-level near-dedup (DeepSeek-Coder), then exact file dedup.

Four steps, so the heavy ones fan out over shards (``rank``/``world_size``):

1. :func:`signature_shard` (per shard): a MinHash signature of every repository's
   concatenated files and a content hash of every file, saved under ``_work/``;
2. :func:`cluster` (once): LSH bands + union-find -> clusters, one repository kept whole
   per cluster; then exact file copies across the survivors; writes ``clusters.parquet``,
   ``exact_duplicates.parquet`` and which input rows to drop;
3. :func:`write_shard` (per shard): the kept rows to ``files/``, in ``records.FILE_SCHEMA``;
4. :func:`finish` (once): ``stats.json`` (checks input == kept + removed) and ``report.md``.

:func:`run` does all four in one process. docs/dedup.md has the design, the memory
bounds and the measured speed and quality.
"""

from __future__ import annotations

from codemill.dedup.cluster import cluster
from codemill.dedup.config import DedupConfig, choose_bands
from codemill.dedup.finish import finish
from codemill.dedup.minhash import MinHasher, estimated_jaccard
from codemill.dedup.signature import signature_shard
from codemill.dedup.write import write_shard
from codemill.stage import InputError
from codemill.tracking import NoOpTracker, Tracker

__all__ = [
    "DedupConfig",
    "MinHasher",
    "choose_bands",
    "cluster",
    "estimated_jaccard",
    "finish",
    "run",
    "signature_shard",
    "write_shard",
]


def run(
    config: DedupConfig, input: str, output: str, rank: int = 0, world_size: int = 1, tracker: Tracker | None = None
) -> dict:
    """All four steps in this process: every shard's signatures, the clustering, every
    shard's files, then the stats. ``rank`` must be 0: one process does the work of all
    ``world_size`` shards (the result is the same for any ``world_size``)."""
    tracker = tracker or NoOpTracker()
    if rank != 0:
        raise InputError(f"dedup run() does every shard itself; call it with rank=0, not {rank}")
    for r in range(world_size):
        signature_shard(config, input, output, r, world_size, tracker)
    cluster(config, output, world_size, tracker)
    for r in range(world_size):
        write_shard(config, input, output, r, world_size, tracker)
    return finish(output, world_size, tracker)

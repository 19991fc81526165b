"""Step 3, one shard: copy the kept rows of this shard's input files to ``files/``.

Each input file ``NAME.parquet`` becomes ``<output>/files/NAME.parquet`` with the rows
the cluster step did not drop, in input order (validate's files are sorted by
(repo, path), so these are too) and in ``records.FILE_SCHEMA``. The output therefore
does not depend on ``world_size``. Rows are streamed; row groups are cut by row and byte
counts (never by time), so the bytes are deterministic.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from codemill import io, runner, stage
from codemill.dedup.config import DedupConfig
from codemill.dedup.layout import CLUSTER, assigned, check_input_schema, input_files, input_name, work_url
from codemill.records import FILE_SCHEMA
from codemill.stage import InputError
from codemill.tracking import Tracker

_ROW_GROUP_ROWS = 65536
_ROW_GROUP_BYTES = 64 << 20


def write_shard(
    config: DedupConfig, input: str, output: str, rank: int = 0, world_size: int = 1, tracker: Tracker | None = None
) -> dict:
    """Write the kept files of this shard's input files; returns the shard's stats."""
    return runner.run(
        "dedup-write", config, output=output, rank=rank, world_size=world_size, tracker=tracker, input=input
    )


def write_step(config: DedupConfig, ctx: runner.Context) -> dict:
    input, output, rank, world_size, tracker = ctx.input("input"), ctx.output, ctx.rank, ctx.world_size, ctx.tracker
    if not stage.shard_done(output, CLUSTER, 0, 1):
        raise stage.PrerequisiteError(
            f"{output}: the dedup cluster step has not finished; "
            "run it before writing shards (codemill dedup --phase cluster)"
        )
    totals: Counter = Counter()
    for url in assigned(input_files(input), rank, world_size):
        check_input_schema(url)
        totals.update(_write_file(config, url, output))
    stats = {k: int(v) for k, v in sorted(totals.items())}
    for key in ("input_files", "kept_files", "kept_bytes", "dropped_near_files", "dropped_exact_files"):
        stats.setdefault(key, 0)
    tracker.log_metrics({k: float(v) for k, v in stats.items()})
    return stats


def _write_file(config: DedupConfig, url: str, output: str) -> Counter:
    name = input_name(url)
    drops = io.read_parquet(work_url(output, "drop", name, ".parquet"))
    drop_rows = drops.column("row").to_numpy()
    reasons = Counter(drops.column("reason").to_pylist())
    expected = io.read_parquet(work_url(output, "files", name, ".parquet"), columns=["row"]).num_rows
    counts: Counter = Counter()
    pending: list[pa.RecordBatch] = []
    with io.open_url(io.join(output, "files", f"{name}.parquet"), "wb") as sink:
        writer = pq.ParquetWriter(sink, FILE_SCHEMA, compression="zstd", write_statistics=True, store_schema=True)
        batches = io.iter_parquet_batches(url, columns=FILE_SCHEMA.names, batch_size=config.batch_rows)
        for batch in tqdm(batches, desc=f"dedup write {name}", unit="batch", mininterval=2.0):
            start = counts["input_files"]
            counts["input_files"] += batch.num_rows
            keep = np.ones(batch.num_rows, dtype=bool)
            lo, hi = np.searchsorted(drop_rows, [start, start + batch.num_rows])
            keep[drop_rows[lo:hi] - start] = False
            kept = batch.filter(pa.array(keep)).select(FILE_SCHEMA.names).cast(FILE_SCHEMA)
            counts["kept_files"] += kept.num_rows
            counts["kept_bytes"] += pc.sum(pc.binary_length(kept.column("content"))).as_py() or 0
            pending.append(kept)
            if (
                sum(b.num_rows for b in pending) >= _ROW_GROUP_ROWS
                or sum(b.nbytes for b in pending) >= _ROW_GROUP_BYTES
            ):
                writer.write_table(pa.Table.from_batches(pending, FILE_SCHEMA))
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending, FILE_SCHEMA))
        writer.close()
    if counts["input_files"] != expected:
        raise InputError(
            f"{url}: holds {counts['input_files']} rows, the signature step saw {expected}; "
            "the input changed between steps, rerun dedup from the start"
        )
    counts["dropped_near_files"] += reasons["near_duplicate"]
    counts["dropped_exact_files"] += reasons["exact_duplicate"]
    return counts

"""The finish step: concatenate the shards into the contract's layout and write the report.

Token arrays are concatenated through ``np.lib.format.open_memmap``, shard by shard, so
finish never holds a split in memory; ``documents.parquet`` rows get the shard's
sequence and document offsets. Nothing time-dependent goes into the output (timings
are printed and logged to the tracker), so the same input and seed give the same bytes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codemill import io, runner, stage
from codemill.pack.config import PackConfig
from codemill.pack.report import render_report
from codemill.pack.steps import SPLITS, STAGE, TOKENIZER_STEP, read_plan, work_url
from codemill.pack.tokenizer import SPECIAL_TOKENS, TextEncoder
from codemill.pack.unpack import decode_unit
from codemill.tracking import Tracker


def finish(output: str, world_size: int = 1, tracker: Tracker | None = None) -> dict:
    """Merge the shards of ``output``; returns the stats written to ``stats.json``."""
    return runner.run("pack-finish", None, output=output, world_size=world_size, tracker=tracker)


def finish_step(config: None, ctx: runner.Context) -> dict:
    output, world_size, tracker = ctx.output, ctx.world_size, ctx.tracker
    if io.exists(io.join(output, "meta.json")) and not io.exists(work_url(output, "plan.json")):
        return stage.read_stats(output)  # finished before; _work/ is gone
    plan = read_plan(output)
    config = PackConfig(**plan["config"])
    shards = stage.read_shard_stats(output, STAGE, world_size)
    tok_info = io.read_json(stage.marker_url(output, TOKENIZER_STEP, 0, 1))
    names = [stage.shard_name(r, world_size) for r in range(world_size)]
    with io.local_copy(io.join(output, "tokenizer")) as tok_dir:
        encoder = TextEncoder(tok_dir)
    meta = {
        "seq_len": config.seq_len,
        "vocab_size": encoder.vocab_size,
        **encoder.ids,
        "fim_rate": config.fim_rate,
        "spm_rate": config.spm_rate,
        "seed": config.seed,
        "tokens_dtype": "uint32",
        "segments_dtype": "int32",
        "special_tokens": SPECIAL_TOKENS,
        "heldout_repos": plan["heldout"],
    }
    with io.local_copy(work_url(output)) as work, io.staged_dir(output) as out:
        split_documents = {}
        for split in SPLITS:
            shard_files = [os.path.join(work, split, n) for n in names]
            os.makedirs(os.path.join(out, split), exist_ok=True)
            rows = _concat_arrays([f + ".tokens.npy" for f in shard_files], os.path.join(out, split, "tokens.npy"))
            _concat_arrays([f + ".segments.npy" for f in shard_files], os.path.join(out, split, "segments.npy"))
            split_documents[split] = _concat_documents(shard_files, rows, os.path.join(out, split, "documents.parquet"))
            meta[f"{split}_sequences"] = int(sum(rows))
        heldout = pa.concat_tables([io.read_parquet(os.path.join(work, "heldout", f"{n}.parquet")) for n in names])
        io.write_parquet(heldout, os.path.join(out, "heldout", "documents.parquet"))
        io.write_json(os.path.join(out, "meta.json"), meta)
        record = merge_stats(shards, config, tok_info, encoder.vocab_size)
        for split, n in split_documents.items():  # documents longer than a row (docs/pack.md)
            record.splits[split]["split_documents"] = n
        record.split_documents = sum(split_documents.values())
        stats = dataclasses.asdict(record)
        stage.write_stats(out, stats)
        examples = _examples(out, meta, encoder)
        report = render_report(stats, config, examples, [s.get("order_example") for s in shards])
        io.write_text(os.path.join(out, "report.md"), report)
        slowest = max(s["seconds"] for s in shards)
        timing = {
            "tokenizer_seconds": tok_info["seconds"],
            "slowest_shard_seconds": slowest,
            "shard_tokens_per_second": stats["tokens"] / max(sum(s["seconds"] for s in shards), 1e-9),
        }
        tracker.log_metrics({**stage.numeric_metrics(stats), **timing})
        tracker.log_artifact(os.path.join(out, "report.md"))
    io.remove_tree(work_url(output))
    print(
        f"[pack] {stats['tokens']:,} tokens in {stats['sequences']:,} sequences, efficiency "
        f"{stats['packing_efficiency']:.4f}; tokenizer {tok_info['seconds']:.1f}s, slowest shard {slowest:.1f}s, "
        f"{timing['shard_tokens_per_second']:,.0f} tokens/s per shard",
        flush=True,
    )
    return stats


def _concat_arrays(sources: list[str], dest: str) -> list[int]:
    """Row-wise concatenation of .npy files into ``dest``; returns each source's row count."""
    arrays = [np.load(s, mmap_mode="r") for s in sources]
    rows = [a.shape[0] for a in arrays]
    shape = (sum(rows), arrays[0].shape[1])
    if shape[0] == 0:  # an empty file cannot be memory-mapped
        np.save(dest, np.zeros(shape, dtype=arrays[0].dtype))
        return rows
    out = np.lib.format.open_memmap(dest, mode="w+", dtype=arrays[0].dtype, shape=shape)
    at = 0
    for a in arrays:
        out[at : at + a.shape[0]] = a
        at += a.shape[0]
    out.flush()
    del out
    return rows


def _concat_documents(shard_files: list[str], rows: list[int], dest: str) -> int:
    """Shard tables with sequence and document numbers offset to the concatenated split;
    returns how many documents span more than one unit."""
    tables, seq_offset, doc_offset = [], 0, 0
    for prefix, n_rows in zip(shard_files, rows):
        t = io.read_parquet(prefix + ".documents.parquet")
        n_docs = (pc.max(t.column("document")).as_py() + 1) if t.num_rows else 0
        t = t.set_column(0, "sequence", pc.add(t.column("sequence"), seq_offset))
        t = t.set_column(t.schema.get_field_index("document"), "document", pc.add(t.column("document"), doc_offset))
        tables.append(t)
        seq_offset += n_rows
        doc_offset += n_docs
    table = pa.concat_tables(tables)
    io.write_parquet(table, dest)
    return sum(n > 1 for n in pc.value_counts(table.column("document")).field("counts").to_pylist())


def _examples(out: str, meta: dict, encoder: TextEncoder) -> dict[str, dict]:
    """The first unit of each format (train split first) decoded, for the report."""
    found: dict[str, dict] = {}
    for split in SPLITS:
        tokens = np.load(os.path.join(out, split, "tokens.npy"), mmap_mode="r")
        table = io.read_parquet(os.path.join(out, split, "documents.parquet"))
        for fmt in ("plain", "psm", "spm"):
            at = pc.index(table.column("format"), fmt).as_py()
            if fmt not in found and at >= 0:
                row = table.slice(at, 1).to_pylist()[0]
                ids = tokens[row["sequence"], row["start"] : row["start"] + row["length"]].tolist()
                found[fmt] = {**row, "split": split, **decode_unit(ids, fmt, meta, encoder.decode)}
    return found


@dataclass
class PackStats:
    """The stage's ``stats.json`` (docs/architecture.md): tokens and rows, FIM shares, per-split
    and per-language counts, dependency ordering, and the tokenizer."""

    documents: int
    units: int
    sequences: int
    tokens: int
    pad_tokens: int
    packing_efficiency: float
    fim_rate: float
    fim_rate_observed: float
    spm_rate: float
    spm_share_observed: float
    formats: dict[str, int]
    seq_len: int
    splits: dict[str, dict]
    repos: dict[str, int]
    files: int
    skipped: dict[str, int]
    repo_documents: int
    file_documents: int
    repo_level_files: dict[str, int]
    dependency_edges: int
    cycles_broken: int
    languages: dict[str, dict]
    tokenizer: dict
    split_documents: int = 0
    fim_to_plain: int = 0


def merge_stats(shards: list[dict], config: PackConfig, tok_info: dict, vocab_size: int) -> PackStats:
    splits = {}
    for split in SPLITS:
        parts = [s["splits"][split] for s in shards]
        merged = {
            k: sum(p[k] for p in parts)
            for k in ("documents", "units", "sequences", "tokens", "pad_tokens", "text_bytes")
        }
        merged["formats"] = {f: sum(p["formats"].get(f, 0) for p in parts) for f in ("plain", "psm", "spm")}
        merged["fim_to_plain"] = sum(p.get("fim_to_plain", 0) for p in parts)  # absent in older shard stats
        splits[split] = merged
    total = {k: sum(s[k] for s in splits.values()) for k in ("documents", "units", "sequences", "tokens", "pad_tokens")}
    formats = {f: sum(s["formats"][f] for s in splits.values()) for f in ("plain", "psm", "spm")}
    fim = formats["psm"] + formats["spm"]
    languages: dict[str, dict] = {}
    for s in shards:
        for lang, counts in s["languages"].items():
            dst = languages.setdefault(lang, {"files": 0, "documents": 0, "units": 0, "tokens": 0})
            for k in dst:
                dst[k] += counts[k]
    return PackStats(
        **total,
        packing_efficiency=total["tokens"] / max(1, total["sequences"] * config.seq_len),
        fim_rate=config.fim_rate,
        fim_rate_observed=fim / max(1, total["units"]),
        spm_rate=config.spm_rate,
        spm_share_observed=formats["spm"] / max(1, fim),
        formats=formats,
        seq_len=config.seq_len,
        splits=splits,
        repos={split: sum(s["repos"][split] for s in shards) for split in SPLITS},
        files=sum(s["files"] for s in shards),
        skipped=_sum_dicts(s["skipped"] for s in shards),
        repo_documents=sum(s["repo_documents"] for s in shards),
        file_documents=sum(s["file_documents"] for s in shards),
        repo_level_files=_sum_dicts(s["repo_level_files"] for s in shards),
        dependency_edges=sum(s["dependency_edges"] for s in shards),
        cycles_broken=sum(s["cycles_broken"] for s in shards),
        languages=dict(sorted(languages.items())),
        tokenizer={"source": tok_info["tokenizer"], "vocab_size": vocab_size, "added_tokens": tok_info["added_tokens"]},
        fim_to_plain=sum(s["fim_to_plain"] for s in splits.values()),
    )


def _sum_dicts(dicts) -> dict:
    out: dict = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))

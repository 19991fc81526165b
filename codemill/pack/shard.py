"""One shard of the pack stage: its repositories' documents, tokenized and packed per split.

The shard streams: repositories (in seeded order) become documents, documents gather
into batches of about ``encode_batch_mb`` of text, and while the tokenizer encodes the
next batch on its own threads (``encode_batch_fast`` releases the GIL) this thread
builds documents and packs the batch before it. The Python work so hides behind the
encoder, which is the stage's floor (see docs/pack.md for the measurements).

A shard keeps its packed rows in memory until it writes them; size shards so that
``rows x seq_len x 8`` bytes fit (``world_size`` divides the corpus).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from codemill import io, runner, stage
from codemill.pack import corpus, documents, tokenizer
from codemill.pack.config import PackConfig
from codemill.pack.packer import Packer
from codemill.pack.steps import SPLITS, finished_output, read_plan, say_finished, work_url
from codemill.stage import InputError
from codemill.tracking import Tracker

HELDOUT_SCHEMA = pa.schema([("repo", pa.string()), ("language", pa.string()), ("text", pa.large_string())])


def pack_shard(
    config: PackConfig, input: str, output: str, rank: int = 0, world_size: int = 1, tracker: Tracker | None = None
) -> dict:
    """Build and pack the documents of this shard's repositories into ``_work/``.

    ``input`` must be what the tokenizer step planned; returns the shard's stats (also
    its completion marker).
    """
    return runner.run(
        "pack-shard", config, output=output, rank=rank, world_size=world_size, tracker=tracker, input=input
    )


def shard_step(config: PackConfig, ctx: runner.Context) -> dict:
    input, output, rank, world_size, tracker = ctx.input("input"), ctx.output, ctx.rank, ctx.world_size, ctx.tracker
    if finished_output(output, config) is not None:  # its marker was lost after finish removed _work/
        say_finished(output, f"shard {stage.shard_name(rank, world_size)}")
        return {"rank": rank, "finished_output": True}
    plan = read_plan(output, config)
    if sorted(corpus.input_urls(input)) != sorted(plan["inputs"]):
        raise InputError(f"{input}: not the input the tokenizer step planned ({len(plan['inputs'])} shards)")
    with io.local_copy(io.join(output, "tokenizer")) as tok_dir:
        encoder = tokenizer.TextEncoder(tok_dir)
    with stage.Timer() as timer:
        skipped: Counter = Counter()
        repos = corpus.read_repos(plan["inputs"], corpus.shard_repos(plan, rank, world_size), skipped)
        heldout = set(plan["heldout"])
        build = documents.BuildStats()
        name = stage.shard_name(rank, world_size)
        stats = {
            "rank": rank,
            "skipped": dict(skipped),
            "splits": {},
            "languages": {},
            "repos": {s: sum((r in heldout) == (s == "val") for r in repos) for s in SPLITS},
        }
        examples: list[documents.Document] = []
        with io.staged_dir(work_url(output)) as work:
            for i, split in enumerate(SPLITS):
                names = sorted(r for r in repos if (r in heldout) == (split == "val"))
                docs = _documents(names, repos, config.seed, build, np.random.default_rng([config.seed, 2, rank, i]))
                packer = Packer(
                    encoder,
                    config.seq_len,
                    config.fim_rate,
                    config.spm_rate,
                    config.min_unit_tokens,
                    np.random.default_rng([config.seed, 3, rank, i]),
                )
                progress = tqdm(total=sum(len(repos[r]) for r in names), desc=f"pack {rank}: {split}", unit=" files")
                with progress:
                    packed_docs, text_bytes = _pack(
                        packer, _encoded(_batches(docs, config.encode_batch_mb), encoder), stats["languages"], progress
                    )
                stats["splits"][split] = {
                    **_write_split(packer, packed_docs, stats["languages"], os.path.join(work, split, name)),
                    "text_bytes": text_bytes,
                }
                examples.append(max(packed_docs, key=lambda d: (len(d.paths), d.repo, d.language), default=None))
                if split == "val":
                    _write_heldout(packed_docs, os.path.join(work, "heldout", f"{name}.parquet"))
    stats.update(
        files=build.files,
        repo_documents=build.repo_documents,
        file_documents=build.file_documents,
        dependency_edges=build.dependency_edges,
        cycles_broken=build.cycles_broken,
        repo_level_files=dict(build.families),
        order_example=_order_example(examples),
        seconds=round(timer.seconds, 3),
    )
    tracker.log_metrics(stage.numeric_metrics({k: v for k, v in stats.items() if k != "rank"}))
    return stats


def _documents(
    names: list[str], repos: dict, seed: int, build: documents.BuildStats, rng: np.random.Generator
) -> Iterator[documents.Document]:
    """The split's documents: repositories in seeded order, their documents shuffled."""
    for k in rng.permutation(len(names)):
        docs = documents.repo_documents(names[k], repos[names[k]], seed, build)
        for j in rng.permutation(len(docs)):
            yield docs[j]


def _batches(docs: Iterable[documents.Document], batch_mb: float) -> Iterator[list[documents.Document]]:
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += sum(len(p) for p in doc.parts)
        if size >= batch_mb * 1e6:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _encode(
    encoder: tokenizer.TextEncoder, batch: list[documents.Document]
) -> list[tuple[documents.Document, np.ndarray]]:
    ids = encoder.encode([p for d in batch for p in d.parts])  # one item per file: parallel and exact
    out, k = [], 0
    for doc in batch:
        out.append((doc, np.concatenate(ids[k : k + len(doc.parts)])))
        k += len(doc.parts)
    return out


def _encoded(batches: Iterable[list[documents.Document]], encoder: tokenizer.TextEncoder):
    """(document, token ids) in order; batch k+1 is encoded while the caller packs batch k."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pack-encode") as pool:
        pending = None
        for batch in batches:  # building this batch overlaps the encoding of the previous one
            future = pool.submit(_encode, encoder, batch)
            if pending is not None:
                yield from pending.result()
            pending = future
        if pending is not None:
            yield from pending.result()


def _pack(packer: Packer, encoded, languages: dict, progress) -> tuple[list[documents.Document], int]:
    """Pack every document; returns them in packing order (index = document number) and their bytes."""
    docs, text_bytes = [], 0
    for doc, ids in encoded:
        if np.isin(ids, packer.enc.special_ids).any():
            raise InputError(f"{doc.repo}: the tokenizer turned source text into a special token")
        data = doc.text.encode("utf-8")
        text_bytes += len(data)
        packer.add(len(docs), ids, data)
        docs.append(doc)
        lang = languages.setdefault(doc.language, {"files": 0, "documents": 0, "units": 0, "tokens": 0})
        lang["files"] += len(doc.paths)
        lang["documents"] += 1
        progress.update(len(doc.paths))
    return docs, text_bytes


def _write_split(packer: Packer, docs: list[documents.Document], languages: dict, prefix: str) -> dict:
    """``prefix``.tokens.npy / .segments.npy / .documents.parquet; returns the split's stats."""
    tokens, segments = packer.out.tokens_and_segments()
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    np.save(prefix + ".tokens.npy", tokens)
    np.save(prefix + ".segments.npy", segments)
    units = packer.out.units
    for u in units:
        lang = languages[docs[u.document].language]
        lang["units"] += 1
        lang["tokens"] += u.length
    io.write_parquet(
        pa.table(
            {
                "sequence": pa.array([u.sequence for u in units], pa.int64()),
                "start": pa.array([u.start for u in units], pa.int32()),
                "length": pa.array([u.length for u in units], pa.int32()),
                "document": pa.array([u.document for u in units], pa.int64()),
                "repo": pa.array([docs[u.document].repo for u in units], pa.string()),
                "language": pa.array([docs[u.document].language for u in units], pa.string()),
                "format": pa.array([u.format for u in units], pa.string()),
            }
        ),
        prefix + ".documents.parquet",
    )
    used = int(sum(u.length for u in units))
    return {
        "documents": len(docs),
        "units": len(units),
        "sequences": int(tokens.shape[0]),
        "tokens": used,
        "pad_tokens": int(tokens.size - used),
        "formats": dict(Counter(u.format for u in units)),
        "fim_to_plain": packer.fim_to_plain,
    }


def _write_heldout(docs: list[documents.Document], url: str) -> None:
    """The held-out documents before FIM, in packing order (document i is row i)."""
    io.write_parquet(
        pa.table(
            {"repo": [d.repo for d in docs], "language": [d.language for d in docs], "text": [d.text for d in docs]},
            schema=HELDOUT_SCHEMA,
        ),
        url,
    )


def _order_example(candidates: list, shown: int = 15) -> dict | None:
    """The first paths of the shard's largest repository document, for the report."""
    doc = max(
        (d for d in candidates if d is not None and len(d.paths) > 1),
        key=lambda d: (len(d.paths), d.repo, d.language),
        default=None,
    )
    if doc is None:
        return None
    return {"repo": doc.repo, "language": doc.language, "files": len(doc.paths), "paths": doc.paths[:shown]}

"""The pack stage's steps: tokenizer, one shard per rank, finish.

``train_tokenizer`` makes the plan (held-out repositories, repositories per shard) and
trains or copies the tokenizer; ``pack_shard`` builds its repositories' documents and
packs them per split into ``_work/``; ``finish`` concatenates the shards into the
contract's ``train/``, ``val/``, ``heldout/``, ``meta.json``, ``stats.json`` and
``report.md`` (see docs/architecture.md) and removes ``_work/``. Each step writes a
completion marker; a retried step that finds its marker does nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from codemill import io, stage
from codemill.pack import corpus, documents, tokenizer
from codemill.pack.config import PackConfig
from codemill.pack.packer import Packer
from codemill.stage import InputError
from codemill.tracking import NoOpTracker

STAGE = "pack"
TOKENIZER_STEP = "pack-tokenizer"
SPLITS = ("train", "val")
HELDOUT_SCHEMA = pa.schema([("repo", pa.string()), ("language", pa.string()), ("text", pa.large_string())])
# knobs that change what is written; a shard refuses to pack under another plan's values
OUTPUT_FIELDS = ("seq_len", "fim_rate", "spm_rate", "vocab_size", "tokenizer", "val_fraction", "seed",
                 "tokenizer_sample_mb", "min_frequency", "min_unit_tokens")


def work_url(output: str, *parts: str) -> str:
    return io.join(output, "_work", *parts)


@contextmanager
def local_dir(url: str):
    """A local folder whose files end up at ``url`` (a temporary folder uploaded for s3://)."""
    if not io.is_s3(url):
        os.makedirs(io.local_path(url), exist_ok=True)
        yield io.local_path(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield tmp
        io.upload_dir(tmp, url)


@contextmanager
def fetched(url: str):
    """A local copy of a folder URL (the folder itself when it is local)."""
    if not io.is_s3(url):
        yield io.local_path(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield io.download_dir(url, tmp)


# ---------------------------------------------------------------------------- tokenizer


def train_tokenizer(config: PackConfig, input: str, output: str, tracker=NoOpTracker()) -> dict:
    """Plan the split and shards; train the tokenizer (or copy ``config.tokenizer``)."""
    config.check()
    stage.log_config(TOKENIZER_STEP, config, tracker)
    if stage.shard_done(output, TOKENIZER_STEP, 0, 1):
        return io.read_json(stage.marker_url(output, TOKENIZER_STEP, 0, 1))
    plan = corpus.make_plan(corpus.input_urls(input), config.val_fraction, config.seed)
    plan["config"] = stage.config_dict(config)
    with stage.Timer() as timer:
        with local_dir(io.join(output, "tokenizer")) as tok_dir:
            if config.tokenizer:
                with fetched(config.tokenizer) as source:
                    added = tokenizer.save_reused(source, tok_dir)
            else:
                sample = corpus.sample_texts(plan, int(config.tokenizer_sample_mb * 1e6), config.seed)
                texts = (documents.file_part(path, documents.language_of(lang, path), content)
                         for _, path, lang, content in tqdm(sample, desc="pack: tokenizer corpus", unit=" files"))
                tok = tokenizer.train_bpe(texts, config.vocab_size, config.min_frequency)
                tokenizer.save_trained(tok, tok_dir, config.seq_len)
                added = []
    io.write_json(work_url(output, "plan.json"), plan)
    info = {"tokenizer": config.tokenizer or "trained", "added_tokens": added, "seconds": round(timer.seconds, 3),
            "repos": len(plan["repos"]), "heldout_repos": len(plan["heldout"])}
    tracker.log_metrics({"tokenizer_seconds": timer.seconds, "repos": len(plan["repos"])})
    stage.mark_shard_done(output, TOKENIZER_STEP, 0, 1, info)
    return info


def read_plan(output: str, config: PackConfig | None = None) -> dict:
    url = work_url(output, "plan.json")
    if not io.exists(url):
        raise InputError(f"{url}: no plan; run the tokenizer step first (codemill pack --step tokenizer)")
    plan = io.read_json(url)
    if config is not None:
        wanted = stage.config_dict(config)
        diff = [k for k in OUTPUT_FIELDS if plan["config"].get(k) != wanted[k]]
        if diff:
            raise InputError(f"{url}: planned with other values of {', '.join(diff)}; "
                             "use the tokenizer step's config for every shard")
    return plan


# ---------------------------------------------------------------------------- shards


def pack_shard(config: PackConfig, input: str, output: str, rank: int = 0, world_size: int = 1,
               tracker=NoOpTracker()) -> dict:
    """Build and pack the documents of this shard's repositories (``input`` is checked
    against the plan; the plan's inputs are read)."""
    config.check()
    stage.check_shard(rank, world_size)
    stage.log_config(f"{STAGE}-{rank}", config, tracker)
    if stage.shard_done(output, STAGE, rank, world_size):
        return io.read_json(stage.marker_url(output, STAGE, rank, world_size))
    plan = read_plan(output, config)
    if sorted(corpus.input_urls(input)) != sorted(plan["inputs"]):
        raise InputError(f"{input}: not the input the tokenizer step planned ({len(plan['inputs'])} shards)")
    with fetched(io.join(output, "tokenizer")) as tok_dir:
        encoder = tokenizer.TextEncoder(tok_dir)
    with stage.Timer() as timer:
        skipped: Counter = Counter()
        repos = corpus.read_repos(plan["inputs"], corpus.shard_repos(plan, rank, world_size), skipped)
        build = documents.BuildStats()
        docs: dict[str, list[documents.Document]] = {s: [] for s in SPLITS}
        heldout = set(plan["heldout"])
        for repo in tqdm(sorted(repos), desc=f"pack {rank}: documents", unit=" repos"):
            docs["val" if repo in heldout else "train"] += documents.repo_documents(repo, repos[repo], config.seed, build)
        name = stage.shard_name(rank, world_size)
        stats = {"rank": rank, "files": build.files, "skipped": dict(skipped), "repo_documents": build.repo_documents,
                 "file_documents": build.file_documents, "dependency_edges": build.dependency_edges,
                 "cycles_broken": build.cycles_broken, "repo_level_files": dict(build.families),
                 "repos": {s: len({d.repo for d in docs[s]}) for s in SPLITS}, "splits": {}, "languages": {},
                 "order_example": _order_example(docs["train"] + docs["val"])}
        with local_dir(work_url(output)) as work:
            for i, split in enumerate(SPLITS):
                rng = np.random.default_rng([config.seed, 2, rank, i])
                ordered = [docs[split][k] for k in rng.permutation(len(docs[split]))]
                stats["splits"][split] = _pack_split(ordered, encoder, config, rng, os.path.join(work, split, name),
                                                     stats["languages"], f"pack {rank}: {split}")
            rows = [(d.repo, d.language, d.text) for d in docs["val"]]
            io.write_parquet(pa.Table.from_arrays([pa.array(c) for c in zip(*rows)] if rows else
                                                  [pa.array([], t) for t in HELDOUT_SCHEMA.types], schema=HELDOUT_SCHEMA),
                             os.path.join(work, "heldout", f"{name}.parquet"))
    stats["seconds"] = round(timer.seconds, 3)
    tracker.log_metrics(stage.numeric_metrics({k: v for k, v in stats.items() if k != "rank"}))
    stage.mark_shard_done(output, STAGE, rank, world_size, stats)
    return stats


def _pack_split(docs: list[documents.Document], encoder: tokenizer.TextEncoder, config: PackConfig,
                rng: np.random.Generator, prefix: str, languages: dict, desc: str) -> dict:
    """Encode and pack one split's documents; write ``prefix``.tokens/segments.npy and .documents.parquet."""
    packer = Packer(encoder, config.seq_len, config.fim_rate, config.spm_rate, config.min_unit_tokens, rng)
    text_bytes = 0
    for index, doc, doc_ids in tqdm(_encoded(docs, encoder, config.encode_batch_files), total=len(docs),
                                    desc=desc, unit=" docs"):
        if np.isin(doc_ids, encoder.special_ids).any():
            raise InputError(f"{doc.repo}: the tokenizer turned source text into a special token")
        data = doc.text.encode("utf-8")
        text_bytes += len(data)
        packer.add(index, doc_ids, data)
        lang = languages.setdefault(doc.language, {"files": 0, "documents": 0, "units": 0, "tokens": 0})
        lang["files"] += len(doc.paths)
        lang["documents"] += 1
    tokens, segments = packer.out.tokens_and_segments()
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    np.save(prefix + ".tokens.npy", tokens)
    np.save(prefix + ".segments.npy", segments)
    units = packer.out.units
    for u in units:
        lang = languages[docs[u.document].language]
        lang["units"] += 1
        lang["tokens"] += u.length
    table = pa.table({
        "sequence": pa.array([u.sequence for u in units], pa.int64()),
        "start": pa.array([u.start for u in units], pa.int32()),
        "length": pa.array([u.length for u in units], pa.int32()),
        "document": pa.array([u.document for u in units], pa.int64()),
        "repo": pa.array([docs[u.document].repo for u in units], pa.string()),
        "language": pa.array([docs[u.document].language for u in units], pa.string()),
        "format": pa.array([u.format for u in units], pa.string()),
    })
    io.write_parquet(table, prefix + ".documents.parquet")
    used = int(sum(u.length for u in units))
    return {"documents": len(docs), "units": len(units), "sequences": int(tokens.shape[0]), "tokens": used,
            "pad_tokens": int(tokens.size - used), "text_bytes": text_bytes,
            "formats": dict(Counter(u.format for u in units))}


def _encoded(docs: list[documents.Document], encoder: tokenizer.TextEncoder, batch_files: int):
    """(index, document, token ids) in order; about ``batch_files`` files per encode call."""
    start = 0
    while start < len(docs):
        end, files = start, 0
        while end < len(docs) and files < batch_files:
            files += len(docs[end].parts)
            end += 1
        ids = encoder.encode([p for d in docs[start:end] for p in d.parts])
        k = 0
        for index in range(start, end):
            n = len(docs[index].parts)
            yield index, docs[index], np.concatenate(ids[k:k + n])
            k += n
        start = end


def _order_example(docs: list[documents.Document], shown: int = 15) -> dict | None:
    """The first paths of the shard's largest repository document, for the report."""
    doc = max((d for d in docs if len(d.paths) > 1), key=lambda d: (len(d.paths), d.repo, d.language), default=None)
    if doc is None:
        return None
    return {"repo": doc.repo, "language": doc.language, "files": len(doc.paths), "paths": doc.paths[:shown]}

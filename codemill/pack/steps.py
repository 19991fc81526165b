"""The pack stage's steps and what they share: the tokenizer step, the plan, the folders.

``train_tokenizer`` (here) makes the plan (held-out repositories, repositories per
shard) and trains or copies the tokenizer; ``pack_shard`` (:mod:`codemill.pack.shard`)
builds its repositories' documents and packs them per split into ``_work/``; ``finish``
(:mod:`codemill.pack.finish`) concatenates the shards into the contract's ``train/``,
``val/``, ``heldout/``, ``meta.json``, ``stats.json`` and ``report.md`` (see
docs/architecture.md) and removes ``_work/``. Each step writes a completion marker; a
retried step that finds its marker does nothing.
"""

from __future__ import annotations

from tqdm import tqdm

from codemill import io, runner, stage
from codemill.pack import corpus, documents, tokenizer
from codemill.pack.config import PackConfig
from codemill.stage import InputError
from codemill.tracking import Tracker

STAGE = "pack"
TOKENIZER_STEP = "pack-tokenizer"
SPLITS = ("train", "val")
# knobs that change what is written; a shard refuses to pack under another plan's values
OUTPUT_FIELDS = (
    "seq_len",
    "fim_rate",
    "spm_rate",
    "vocab_size",
    "tokenizer",
    "val_fraction",
    "seed",
    "tokenizer_sample_mb",
    "min_frequency",
    "min_unit_tokens",
)


def work_url(output: str, *parts: str) -> str:
    return io.join(output, "_work", *parts)


# ---------------------------------------------------------------------------- tokenizer


def train_tokenizer(config: PackConfig, input: str, output: str, tracker: Tracker | None = None) -> dict:
    """Plan the split and shards; train the tokenizer (or copy ``config.tokenizer``)."""
    return runner.run("pack-tokenizer", config, output=output, tracker=tracker, input=input)


def tokenizer_step(config: PackConfig, ctx: runner.Context) -> dict:
    input, output, tracker = ctx.input("input"), ctx.output, ctx.tracker
    plan = corpus.make_plan(corpus.input_urls(input), config.val_fraction, config.seed)
    plan["config"] = stage.config_dict(config)
    with stage.Timer() as timer, io.staged_dir(io.join(output, "tokenizer")) as tok_dir:
        if config.tokenizer:
            with io.local_copy(config.tokenizer) as source:
                added = tokenizer.save_reused(source, tok_dir)
        else:
            sample = corpus.sample_texts(plan, int(config.tokenizer_sample_mb * 1e6), config.seed)
            texts = (
                documents.file_part(path, documents.language_of(lang, path), content)
                for _, path, lang, content in tqdm(sample, desc="pack: tokenizer corpus", unit=" files")
            )
            tok = tokenizer.train_bpe(texts, config.vocab_size, config.min_frequency)
            tokenizer.save_trained(tok, tok_dir, config.seq_len)
            added = []
    io.write_json(work_url(output, "plan.json"), plan)
    info = {
        "tokenizer": config.tokenizer or "trained",
        "added_tokens": added,
        "seconds": round(timer.seconds, 3),
        "repos": len(plan["repos"]),
        "heldout_repos": len(plan["heldout"]),
    }
    tracker.log_metrics({"tokenizer_seconds": timer.seconds, "repos": len(plan["repos"])})
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
            raise InputError(
                f"{url}: planned with other values of {', '.join(diff)}; "
                "use the tokenizer step's config for every shard"
            )
    return plan

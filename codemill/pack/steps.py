"""The pack stage's steps and what they share: the tokenizer step, the plan, the folders.

``train_tokenizer`` (here) makes the plan (held-out repositories, repositories per
shard) and trains or copies the tokenizer; ``pack_shard`` (:mod:`codemill.pack.shard`)
builds its repositories' documents and packs them per split into ``_work/``; ``finish``
(:mod:`codemill.pack.finish`) concatenates the shards into the contract's ``train/``,
``val/``, ``heldout/``, ``meta.json``, ``stats.json`` and ``report.md`` (see
docs/architecture.md) and removes ``_work/``. Each step writes a completion marker; a
retried step that finds its marker does nothing. A step whose marker is lost or
unreadable after finish (the plan went with ``_work/``) finds the finished output
(:func:`finished_output`) and does nothing either, saying so.
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


# values meta.json records, so a rerun into a finished output can be checked against them
META_FIELDS = ("seq_len", "fim_rate", "spm_rate", "seed")


def finished_output(output: str, config: PackConfig | None = None) -> dict | None:
    """The stats of a finished pack in ``output`` (meta.json and stats.json, no ``_work/`` plan),
    or None. A config with other values than the finished pack's is refused."""
    meta_url = io.join(output, "meta.json")
    if io.exists(work_url(output, "plan.json")) or not io.exists(meta_url):
        return None
    if not io.exists(io.join(output, "stats.json")):
        return None
    if config is not None:
        meta = io.read_json(meta_url)
        diff = [k for k in META_FIELDS if meta.get(k) != getattr(config, k)]
        if diff:
            raise InputError(
                f"{output}: a finished pack made with other values of {', '.join(diff)}; "
                "use a new --output (or remove this one to redo it)"
            )
    return stage.read_stats(output)


def say_finished(output: str, step: str) -> None:
    print(
        f"[pack] {output} is a finished pack (meta.json, stats.json); {step}: nothing to do "
        "(remove the output to redo it)",
        flush=True,
    )


# ---------------------------------------------------------------------------- tokenizer


def train_tokenizer(config: PackConfig, input: str, output: str, tracker: Tracker | None = None) -> dict:
    """Plan the split and shards; train the tokenizer (or copy ``config.tokenizer``)."""
    return runner.run("pack-tokenizer", config, output=output, tracker=tracker, input=input)


def tokenizer_step(config: PackConfig, ctx: runner.Context) -> dict:
    input, output, tracker = ctx.input("input"), ctx.output, ctx.tracker
    finished = finished_output(output, config)
    if finished is not None:  # its marker was lost; training again would overwrite tokenizer/
        say_finished(output, "tokenizer")
        tok = finished["tokenizer"]
        return {
            "tokenizer": tok["source"],
            "added_tokens": tok["added_tokens"],
            "seconds": 0.0,
            "repos": sum(finished["repos"].values()),
            "heldout_repos": finished["repos"]["val"],
        }
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

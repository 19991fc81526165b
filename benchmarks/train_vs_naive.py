"""Useful (non-pad) training tokens per second: this stage's packed recipe vs the naive one, on CPU.

Naive recipe (what many tutorials do): one file per row, pre-tokenized with
``tokenizer(..., padding="max_length", truncation=True, max_length=seq_len)``, a 2D
padding mask, loss on non-pad tokens.

This stage's recipe: the same files closed with EOS, concatenated and cut into full rows
(pack's format), batches built by ``codemill.train.data`` (seeded order, restarting
position ids, block-causal mask, labels) and the loss normalised as the stage does.

Same model (the ``tiny`` preset's shape, same init), sequence length, batch size and
optimizer. The two recipes alternate step by step in one process, so load from other
processes on a shared machine hits both alike; the first steps of each are warmup.

    .venv/bin/python benchmarks/train_vs_naive.py --steps 20 --seq-lens 512 2048
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill.train import load_preset  # noqa: E402
from codemill.train.data import PackedSplit, step_rows, train_batch  # noqa: E402
from codemill.train.model import llama_config  # noqa: E402
from tests.conftest import build_tiny_tokenizer  # noqa: E402
from tests.train.packed_corpus import distribution_sources, pack_rows, tokenize  # noqa: E402

WARMUP = 2


def fresh_model(tok, seed: int):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(llama_config(load_preset("tiny")["model"], tok, "sdpa"))
    opt = torch.optim.AdamW(model.parameters(), lr=load_preset("tiny")["train"]["lr"], betas=(0.9, 0.95))
    return model.train(), opt


def optimizer_step(model, opt, loss) -> None:
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def compare(tok, texts, docs, seq_len: int, batch: int, steps: int, seed: int) -> dict:
    tokens, segments = pack_rows(docs, seq_len, tok.pad_token_id)
    split = PackedSplit("train", tokens, segments)
    naive_rows = tok(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="pt")
    stage_model, stage_opt = fresh_model(tok, seed)
    naive_model, naive_opt = fresh_model(tok, seed)
    timing = {"stage": [0.0, 0], "naive": [0.0, 0]}
    order = np.random.default_rng(seed).permutation(len(texts))
    for step in range(steps + WARMUP):
        t0 = time.perf_counter()
        b = train_batch(split, step_rows(split.n_sequences, seed, step, 0, batch, 1), torch.bool)
        loss = stage_model(**b.model_inputs(), num_items_in_batch=torch.tensor(float(b.targets))).loss
        optimizer_step(stage_model, stage_opt, loss)
        t1 = time.perf_counter()
        rows = order[[(step * batch + i) % len(texts) for i in range(batch)]]
        ids, mask = naive_rows["input_ids"][rows], naive_rows["attention_mask"][rows]
        loss = naive_model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        optimizer_step(naive_model, naive_opt, loss)
        t2 = time.perf_counter()
        if step >= WARMUP:
            timing["stage"][0] += t1 - t0
            timing["stage"][1] += b.tokens
            timing["naive"][0] += t2 - t1
            timing["naive"][1] += int(mask.sum())
    corpus_tokens = sum(len(d) for d in docs)
    stage_tps = timing["stage"][1] / timing["stage"][0]
    naive_tps = timing["naive"][1] / timing["naive"][0]
    return {
        "seq_len": seq_len,
        "batch_size": batch,
        "steps": steps,
        "stage_tokens_per_second": round(stage_tps),
        "naive_tokens_per_second": round(naive_tps),
        "speedup": round(stage_tps / naive_tps, 2),
        "stage_pad_fraction": round(float((segments < 0).mean()), 4),
        "naive_pad_fraction": round(1 - float(naive_rows["attention_mask"].float().mean()), 4),
        "naive_truncated_share_of_corpus": round(1 - int(naive_rows["attention_mask"].sum()) / corpus_tokens, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repos", type=int, default=40, help="installed distributions in the corpus (as the local run)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per recipe and sequence length")
    p.add_argument("--seq-lens", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--tokens-per-step", type=int, default=4096, help="batch size = this / seq_len")
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    texts = distribution_sources(args.repos)
    tok = build_tiny_tokenizer(os.path.join(tempfile.mkdtemp(prefix="bench-train-"), "tok"), vocab_size=args.vocab)
    docs = tokenize(tok, texts)
    lengths = np.array([len(d) for d in docs])
    print(
        f"{len(texts)} files from {args.repos} distributions; median {int(np.median(lengths))} tokens, "
        f"{(lengths < 512).mean():.0%} under 512; torch threads {torch.get_num_threads()}",
        flush=True,
    )
    results = []
    for seq_len in args.seq_lens:
        results.append(
            compare(tok, texts, docs, seq_len, max(1, args.tokens_per_step // seq_len), args.steps, args.seed)
        )
        print(json.dumps(results[-1]), flush=True)
    summary = {"files": len(texts), "median_file_tokens": int(np.median(lengths)), "results": results}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

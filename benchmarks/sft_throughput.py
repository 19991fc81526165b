"""Tokens/s of ``codemill sft`` (TRL's SFTTrainer) on CPU against a bare PyTorch loop, on the tiny model.

    .venv/bin/python benchmarks/sft_throughput.py [--steps 10] [--threads 2]

The model has the shape of ``codemill train``'s tiny preset (Llama, 2 x 128, ~0.3M
non-embedding parameters) with a 512-token byte-level BPE; the data are 256 conversations
asking for a standard-library function and answering with its source in a ```python block.
Four runs, the same examples, batch 8, seq_len 512, AdamW:

- ``sft --packing`` (TRL best-fit packing, padding-free rows, SDPA with the block-diagonal mask);
- ``sft --no-packing`` (TRL, rows padded to the longest in the batch);
- a bare loop over the same packed rows (forward, backward, AdamW step; nothing else);
- a bare loop over the same padded batches.

tokens/s counts every non-pad token that went through the model (prompt and reply), over
the training steps only (model loading, tokenization and evaluation excluded).
Results go in docs/sft.md.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WARMUP = 2


def build_base(folder: str) -> str:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=list(special.values()),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([Path(f).read_text(encoding="utf-8") for f in stdlib_files()], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def stdlib_files() -> list[str]:
    return sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))[:40]


def conversations(n: int) -> list[list[dict]]:
    rows = []
    for path in stdlib_files():
        source = Path(path).read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and len(rows) < n:
                code = "\n".join(ast.get_source_segment(source, node).splitlines()[:25])
                rows.append(
                    [
                        {"role": "user", "content": f"Write `{node.name}` as in {os.path.basename(path)}."},
                        {"role": "assistant", "content": f"```python\n{code}\n```"},
                    ]
                )
    return rows


def write_data(folder: str, rows: list) -> str:
    import pyarrow as pa

    from codemill import io

    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    io.write_parquet(pa.table({"messages": pa.array(rows, type=messages)}), os.path.join(folder, "data", "0.parquet"))
    return folder


def run_sft(base: str, data: str, out: str, steps: int, packing: bool) -> float:
    from codemill.sft import SftConfig, sft

    stats = sft(
        SftConfig(
            preset="tiny",
            max_steps=steps,
            packing=packing,
            eval_fraction=0.0,
            save_steps=10**6,
            logging_steps=steps,
            eval_steps=10**6,
        ),
        base,
        data,
        out,
    )
    return stats["tokens_per_second"]


def bare_loop(base: str, rows: list, steps: int, packing: bool) -> float:
    """The same examples through forward/backward/AdamW with nothing around it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from codemill.sft import template

    tok = AutoTokenizer.from_pretrained(base)
    template.ensure_chat_template(tok)
    model = AutoModelForCausalLM.from_pretrained(base, attn_implementation="sdpa")
    model.resize_token_embeddings(len(tok))
    model.config.use_cache = False
    encoded = [template.encode(tok, r, 512) for r in rows]
    examples = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]
    collate = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=packing)
    batches = [collate(examples[i : i + 8]) for i in range(0, len(examples) - 7, 8)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, start = 0, time.perf_counter()
    for step in range(steps + WARMUP):
        if step == WARMUP:  # the first steps allocate and spin up threads: not timed
            tokens, start = 0, time.perf_counter()
        batch = batches[step % len(batches)]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "labels", "position_ids", "attention_mask")}
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = conversations(256)
    with tempfile.TemporaryDirectory() as tmp:
        base = build_base(os.path.join(tmp, "base"))
        data = write_data(os.path.join(tmp, "data"), rows)
        results = {
            "sft_packing": run_sft(base, data, os.path.join(tmp, "a"), args.steps, True),
            "sft_padded": run_sft(base, data, os.path.join(tmp, "b"), args.steps, False),
            "bare_loop_packing": bare_loop(base, rows, args.steps, True),
            "bare_loop_padded": bare_loop(base, rows, args.steps, False),
        }
    print(
        json.dumps(
            {
                "steps": args.steps,
                "threads": args.threads,
                "examples": len(rows),
                "tokens_per_second": {k: round(v) for k, v in results.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

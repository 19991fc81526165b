"""Seconds per ``codemill rl`` step on CPU for the local pipeline's shape, by torch thread count.

The tiny BPE model of tests/conftest.py (2 layers, hidden 64), the 13 bundled stdin/stdout
problems, the stage's defaults (4 prompts x 8 generations, up to 256 completion tokens),
3 steps; the sandbox runs the programs in its own processes at the same time. Each thread
count is a fresh run with the same seed (so the same completions). ``--busy K`` starts K
busy-looping processes for the duration, standing in for other jobs on the same cores
(the situation of a shared CI runner or of kfp.local next to other work).

    .venv/bin/python benchmarks/rl_step_time.py --threads 1 2
    .venv/bin/python benchmarks/rl_step_time.py --threads 1 2 --busy 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill.rl.config import RLConfig  # noqa: E402
from codemill.rl.loop import run  # noqa: E402


def tiny_model(path: str) -> str:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from tests.conftest import build_tiny_tokenizer

    tok = build_tiny_tokenizer(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    ).save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--busy", type=int, default=0, help="busy-looping processes running alongside")
    args = ap.parse_args()
    import subprocess

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        measure(args)
    finally:
        for p in busy:
            p.kill()
            p.wait()


def measure(args) -> None:
    work = tempfile.mkdtemp(prefix="rl-step-time-")
    model = tiny_model(os.path.join(work, "model"))
    out = {}
    for n in args.threads:
        stats = run(
            RLConfig(max_steps=args.steps, eval_every=0, num_threads=n), model, None, os.path.join(work, f"t{n}")
        )
        m = stats["monitors"]
        out[f"threads_{n}"] = {
            "s_per_step": round(sum(m["step_seconds"]) / args.steps, 2),
            "generation_s_per_step": round(sum(m["generation_seconds"]) / args.steps, 2),
            "mean_completion_tokens": round(sum(m["response_length"]) / args.steps, 1),
        }
    print(json.dumps({"busy_processes": args.busy, **out}, indent=1))


if __name__ == "__main__":
    main()

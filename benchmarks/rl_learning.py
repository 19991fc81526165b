"""A CPU learning demonstration: the pass rate of a tiny model rises under rl, and does not
when the same run's rewards are shuffled.

Model and tasks (tests/rl/line_model.py): a 1-layer Llama whose tokens are whole program
lines (``print(int(input()) + 1)\\n``, ``print(int(input()) * 2)\\n``, ...), randomly
initialised; stdin/stdout problems "Print n plus one" and "Print twice n" in the
LiveCodeBench layout. Completions are one token, so a random model passes about one time in
ten and must learn which line the statement asks for. Rewards come from running the program
in the sandbox through the same path as ``codemill rl`` (evaluate's stdio judge per case).

Two runs, identical but for the rewards: ``real`` and ``shuffled`` (each step's rewards
permuted across the batch before the advantages, so the signal no longer belongs to the
completion). After training, both models are sampled on held-out problems (same operations,
other inputs) and scored in the sandbox.

    .venv/bin/python benchmarks/rl_learning.py --steps 25 --plot docs/rl_learning.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from codemill.rl import data
from codemill.rl import policy as _policy  # noqa: E402
from codemill.rl.config import RLConfig  # noqa: E402
from codemill.rl.loop import run  # noqa: E402
from codemill.rl.reward import Rewarder  # noqa: E402
from tests.rl.line_model import build_model, write_problems  # noqa: E402

OPS = ["plus-one", "twice"]


def heldout_pass_rate(model_dir: str, problems: str, samples: int, seed: int) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    loaded, _ = data.load(RLConfig(problems=problems, decontaminate=[]), None)
    prompts = [_policy.encode_prompt(tok, t.prompt, False, 1024) for t in loaded.train]
    torch.manual_seed(seed)
    batch = _policy.sample(model, tok, prompts, samples, 1, 1.0, 1.0, torch.device("cpu"))
    with Rewarder(workers=2) as rewarder:
        scores = rewarder.score([t for t in loaded.train for _ in range(samples)], batch.texts)
    return sum(s.passed for s in scores) / len(scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--plot", default="")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rl-learning-")
    model = build_model(os.path.join(work, "model"), seed=args.seed)
    train = write_problems(os.path.join(work, "train.jsonl"), OPS, per_op=3, cases=2)
    heldout = write_problems(os.path.join(work, "heldout.jsonl"), OPS, per_op=2, cases=2, start=102)  # other inputs
    config = RLConfig(
        problems=train,
        decontaminate=[],
        max_steps=args.steps,
        num_generations=8,
        prompts_per_step=4,
        max_completion_tokens=1,
        mask_truncated=False,
        lr=args.lr,
        eval_every=0,
        checkpoint_every=0,
        npr_threshold=1.01,
        workers=2,
        num_threads=1,
        seed=args.seed,
    )
    base = heldout_pass_rate(model, heldout, 16, args.seed)
    results = {"steps": args.steps, "heldout_before": base}
    curves = {}
    for name, shuffle in (("real", False), ("shuffled", True)):
        start = time.perf_counter()
        out = os.path.join(work, name)
        stats = run(config, model, None, out, shuffle_rewards=shuffle)
        curves[name] = stats["monitors"]["pass_rate"]
        k = max(1, args.steps // 5)
        results[name] = {
            "train_pass_first5": round(sum(curves[name][:k]) / k, 3),
            "train_pass_last5": round(sum(curves[name][-k:]) / k, 3),
            "heldout_after": heldout_pass_rate(os.path.join(out, "model"), heldout, 16, args.seed),
            "seconds": round(time.perf_counter() - start, 1),
            "zero_variance_groups": stats["zero_variance_groups"],
            "groups": stats["groups"],
        }
    print(json.dumps(results, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for name, curve in curves.items():
            ax.plot(range(1, len(curve) + 1), curve, marker=".", label=f"{name} rewards")
        ax.set_xlabel("step")
        ax.set_ylabel("training pass rate (32 samples)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"rl on CPU: line-token model, seed {args.seed}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()

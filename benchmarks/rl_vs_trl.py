"""Seconds per RL step on CPU: codemill's own loop against TRL's ``GRPOTrainer``, same work.

Same model (tests/rl/line_model.py, the tiny line-token Llama), same prompts (the learning
demo's problems), 4 prompts x 8 generations per step, one-token completions, the same
sandboxed reward (:class:`codemill.rl.reward.Rewarder`, called by TRL through a reward
function), ``loss_type="dapo"``, ``beta=0``, ``use_cpu=True``. Rewards are the same kind of
work in both, so the difference is the trainer's own overhead per step (generation set-up,
accelerate, logging), which is what matters for the local pipeline on two cores.

    .venv/bin/python benchmarks/rl_vs_trl.py --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill.rl import data  # noqa: E402
from codemill.rl.config import RLConfig  # noqa: E402
from codemill.rl.loop import run  # noqa: E402
from codemill.rl.reward import Rewarder  # noqa: E402
from tests.rl.line_model import build_model, write_problems  # noqa: E402


def codemill_seconds(model: str, problems: str, steps: int, out: str) -> float:
    config = RLConfig(
        problems=problems,
        decontaminate=[],
        max_steps=steps,
        num_generations=8,
        prompts_per_step=4,
        max_completion_tokens=1,
        mask_truncated=False,
        lr=1e-2,
        eval_every=0,
        checkpoint_every=0,
        npr_threshold=1.01,
        workers=2,
        num_threads=1,
    )
    stats = run(config, model, None, out)
    return sum(stats["monitors"]["step_seconds"][1:]) / (steps - 1)  # the first step warms up


def trl_seconds(model_dir: str, problems: str, steps: int, out: str) -> float:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    loaded, _ = data.load(RLConfig(problems=problems, decontaminate=[]), None)
    by_prompt = {t.prompt: t for t in loaded.train}
    rewarder = Rewarder(workers=2).__enter__()

    def sandbox_reward(prompts, completions, **_):
        return [s.fraction for s in rewarder.score([by_prompt[p] for p in prompts], completions)]

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    args = GRPOConfig(
        output_dir=out,
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=32,
        num_generations=8,
        max_completion_length=1,
        max_steps=steps,
        learning_rate=1e-2,
        beta=0.0,
        loss_type="dapo",
        logging_steps=1000,
        save_strategy="no",
        report_to=[],
        temperature=1.0,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    tok = AutoTokenizer.from_pretrained(model_dir)
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=sandbox_reward,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": t.prompt} for t in loaded.train]),
        processing_class=tok,
        callbacks=[Timer()],
    )
    try:
        trainer.train()
    finally:
        rewarder.__exit__(None, None, None)
    return sum(times[1:]) / (len(times) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rl-vs-trl-")
    model = build_model(os.path.join(work, "model"))
    problems = write_problems(os.path.join(work, "p.jsonl"), ["plus-one", "twice"], per_op=3, cases=2)
    ours = codemill_seconds(model, problems, args.steps, os.path.join(work, "ours"))
    theirs = trl_seconds(model, problems, args.steps, os.path.join(work, "trl"))
    print(
        json.dumps(
            {
                "steps": args.steps,
                "codemill_s_per_step": round(ours, 3),
                "trl_s_per_step": round(theirs, 3),
                "trl_over_codemill": round(theirs / ours, 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

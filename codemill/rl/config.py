"""RLConfig: every setting of the rl stage; each field is also a ``codemill rl`` flag.

Defaults follow open-r1's code recipes and ScaleRL where they agree (docs/rl.md, "Settings"):
masked truncated completions, batch-level advantage normalisation, zero-variance filtering
and no-positive-resampling on; beta 0. Loss names are TRL's (``trl/trainer/grpo_config.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codemill.stage import InputError

KINDS = ("generate", "output", "input")
LOSSES = ("grpo", "dapo", "dr_grpo", "cispo")
REWARDS = ("pass", "fraction", "weighted")
SCALES = ("group", "batch", "none")
PROMPT_STYLES = ("auto", "base", "chat")
PRECISIONS = ("fp32", "bf16")
BENCHMARKS = ("humaneval", "stdio")


def _opt(default, help: str, **meta):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class RLConfig:
    """How to run GRPO-family RL on executed rewards."""

    # ------------------------------------------------------------------------ data
    kinds: list[str] = _opt(list(KINDS), "task kinds to train on (tasks stage kinds)", choices=KINDS)
    problems: str = _opt(
        "",
        "stdin/stdout problems JSONL (LiveCodeBench or rStar-Coder layout; local or s3://); "
        "'bundled' = the 13 in codemill/evaluate/data (also used when no --tasks is given)",
    )
    decontaminate: list[str] = _opt(
        list(BENCHMARKS),
        "evaluation sets problems must not overlap: humaneval, stdio (evaluate's stdio set), or JSONL paths",
        metavar="SET",
    )
    max_tasks: int = _opt(0, "at most this many training prompts, in task-id order (0 = all)")
    heldout_tasks: int = _opt(16, "held-out prompts scored for the pass-rate-vs-compute fit (0 = none)")
    prompt_style: str = _opt(
        "auto", "auto: the chat template when the tokenizer has one, else the raw prompt", choices=PROMPT_STYLES
    )
    # ------------------------------------------------------------------------ sampling
    num_generations: int = _opt(8, "completions per prompt (the GRPO group)")
    prompts_per_step: int = _opt(4, "prompts per optimizer step (a multiple of the number of ranks)")
    max_steps: int = _opt(20, "optimizer steps")
    max_prompt_tokens: int = _opt(1024, "longer prompts are cut from the left")
    max_completion_tokens: int = _opt(256, "completion token limit; completions that reach it are truncated")
    temperature: float = _opt(1.0, "sampling temperature")
    top_p: float = _opt(1.0, "nucleus sampling")
    # ------------------------------------------------------------------------ reward
    reward: str = _opt(
        "fraction", "pass (all tests), fraction (share of tests), weighted (pass + 0.1 x fraction)", choices=REWARDS
    )
    format_weight: float = _opt(0.0, "weight of the format reward: a <think>...</think> block then one code block")
    sandbox_url: str = _opt("", "verifier sandbox service URL; empty runs the sandbox in process")
    workers: int = _opt(2, "sandboxed executions in flight at once")
    test_timeout: float = _opt(5.0, "wall seconds per test case (open-r1: 5 s)")
    # ------------------------------------------------------------------------ loss
    loss: str = _opt("dapo", "loss as TRL names it: grpo, dapo, dr_grpo, cispo", choices=LOSSES)
    beta: float = _opt(0.0, "KL coefficient to the starting model (0 = no reference model)")
    lr: float = _opt(1e-6, "AdamW learning rate (constant)")
    epsilon: float = _opt(0.2, "lower clip of the importance ratio")
    epsilon_high: float = _opt(0.0, "upper clip (0 = 0.28 for grpo/dapo/dr_grpo, 5.0 for cispo as in ScaleRL)")
    num_iterations: int = _opt(1, "updates per generated batch (mu); > 1 makes the ratio and clipping bite")
    scale_rewards: str = _opt(
        "batch", "advantage normalisation: group std, batch std (ScaleRL) or none (Dr. GRPO)", choices=SCALES
    )
    mask_truncated: bool = _opt(True, "truncated completions get no loss (reward still logged)")
    max_grad_norm: float = _opt(1.0, "clip the gradient norm (0 = off)")
    micro_batch: int = _opt(16, "sequences per forward/backward pass")
    # ------------------------------------------------------------------------ pool
    zero_variance_filter: bool = _opt(True, "groups whose rewards are all equal do not enter the loss")
    npr_threshold: float = _opt(
        0.9, "no-positive-resampling: a task whose recent pass rate reaches this leaves the pool (1.01 = off)"
    )
    npr_window: int = _opt(2, "recent groups of a task the pass rate is taken over")
    difficulty_samples: int = _opt(0, "completions per task before training for the difficulty filter (0 = off)")
    difficulty_min: float = _opt(0.1, "difficulty filter: keep tasks with pass rate >= this (open-r1: 0.1)")
    difficulty_max: float = _opt(0.6, "difficulty filter: keep tasks with pass rate <= this (open-r1: 0.6)")
    # ------------------------------------------------------------------------ evaluation, fit
    eval_every: int = _opt(5, "steps between held-out pass-rate evaluations (0 = only at start and end)")
    eval_generations: int = _opt(2, "samples per held-out prompt (at the training temperature)")
    fit_min_points: int = _opt(4, "held-out points needed before the ScaleRL sigmoid is fitted")
    # ------------------------------------------------------------------------ run
    checkpoint_every: int = _opt(10, "steps between checkpoints (0 = only at the end and on SIGTERM)")
    keep_checkpoints: int = _opt(2, "recent checkpoints kept")
    resume: bool = _opt(True, "resume from the latest complete checkpoint in the output")
    precision: str = _opt("fp32", "fp32 or bf16 weights for the policy", choices=PRECISIONS)
    num_threads: int = _opt(
        0, "CPU threads for torch (0 = 1 on CPU, leaving the cores to the sandbox; torch's default on GPU)"
    )
    seed: int = _opt(0, "seed: task order, sampling, shuffles; same inputs + seed give the same run")

    def clip_high(self) -> float:
        if self.epsilon_high:
            return self.epsilon_high
        return 5.0 if self.loss == "cispo" else 0.28

    def ensure_valid(self) -> RLConfig:
        """Raise InputError naming the field when a value cannot work."""
        unknown = sorted(set(self.kinds) - set(KINDS))
        checks = [
            (not unknown and bool(self.kinds), f"kinds {unknown or '[]'}: expected some of {', '.join(KINDS)}"),
            (self.loss in LOSSES, f"loss {self.loss!r}: expected one of {', '.join(LOSSES)}"),
            (self.reward in REWARDS, f"reward {self.reward!r}: expected one of {', '.join(REWARDS)}"),
            (self.scale_rewards in SCALES, f"scale_rewards {self.scale_rewards!r}: expected one of {SCALES}"),
            (self.prompt_style in PROMPT_STYLES, f"prompt_style {self.prompt_style!r}: expected {PROMPT_STYLES}"),
            (self.precision in PRECISIONS, f"precision {self.precision!r}: expected one of {PRECISIONS}"),
            (
                self.num_generations >= 2,
                f"num_generations must be >= 2 (a group needs a spread), got {self.num_generations}",
            ),
            (self.prompts_per_step >= 1, f"prompts_per_step must be >= 1, got {self.prompts_per_step}"),
            (self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.max_completion_tokens >= 1, f"max_completion_tokens must be >= 1, got {self.max_completion_tokens}"),
            (self.max_prompt_tokens >= 1, f"max_prompt_tokens must be >= 1, got {self.max_prompt_tokens}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.epsilon < 1 and self.epsilon_high >= 0, "need 0 <= epsilon < 1 and epsilon_high >= 0"),
            (self.num_iterations >= 1, f"num_iterations must be >= 1, got {self.num_iterations}"),
            (self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}"),
            (self.micro_batch >= 1, f"micro_batch must be >= 1, got {self.micro_batch}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.test_timeout > 0, f"test_timeout must be > 0, got {self.test_timeout}"),
            (0 <= self.format_weight <= 1, f"format_weight must be in [0, 1], got {self.format_weight}"),
            (self.npr_window >= 1, f"npr_window must be >= 1, got {self.npr_window}"),
            (self.difficulty_samples >= 0, f"difficulty_samples must be >= 0, got {self.difficulty_samples}"),
            (
                0 <= self.difficulty_min <= self.difficulty_max <= 1,
                f"need 0 <= difficulty_min ({self.difficulty_min}) <= difficulty_max ({self.difficulty_max}) <= 1",
            ),
            (self.max_tasks >= 0 and self.heldout_tasks >= 0, "max_tasks and heldout_tasks must be >= 0"),
            (self.eval_every >= 0 and self.eval_generations >= 1, "need eval_every >= 0 and eval_generations >= 1"),
            (self.fit_min_points >= 3, f"fit_min_points must be >= 3 (three parameters), got {self.fit_min_points}"),
            (
                self.checkpoint_every >= 0 and self.keep_checkpoints >= 1,
                "need checkpoint_every >= 0 and keep_checkpoints >= 1",
            ),
            (self.num_threads >= 0, f"num_threads must be >= 0, got {self.num_threads}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"rl: {message}")
        return self

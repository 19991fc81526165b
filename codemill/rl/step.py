"""One RL step: sample groups, score them in the sandbox, update the policy, measure everything.

Read top to bottom: draw prompts -> sample G completions each -> submit them to the
verifier (futures) -> reference/old log-probs while the code runs -> rewards, group
advantages, zero-variance filter -> ``num_iterations`` updates over micro-batches ->
the step's monitors and one rollout row per completion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from codemill.rl import loss as _loss
from codemill.rl import policy as _policy
from codemill.rl.config import RLConfig
from codemill.rl.data import RLTask
from codemill.rl.reward import Rewarder, Score, format_ok, reward_value


@dataclass
class Run:
    """What the loop hands every step."""

    config: RLConfig
    policy: torch.nn.Module
    ref: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    tokenizer: object
    chat: bool
    rewarder: Rewarder
    dist: object  # codemill.train.dist.Dist
    n_params: int
    prompt_cache: dict = field(default_factory=dict)

    def prompt_ids(self, task: RLTask) -> list[int]:
        if task.task_id not in self.prompt_cache:
            self.prompt_cache[task.task_id] = _policy.encode_prompt(
                self.tokenizer, task.prompt, self.chat, self.config.max_prompt_tokens
            )
        return self.prompt_cache[task.task_id]


@dataclass
class StepResult:
    metrics: dict
    rows: list[dict]
    group_pass: dict[str, float]  # task id -> pass rate of its group (this rank)
    zero_variance_groups: int
    groups: int


def rollout(run: Run, tasks: list[RLTask], group: int) -> tuple[_policy.Rollouts, list[RLTask], float]:
    c = run.config
    start = time.perf_counter()
    run.policy.eval()
    batch = _policy.sample(
        run.policy,
        run.tokenizer,
        [run.prompt_ids(t) for t in tasks],
        group,
        c.max_completion_tokens,
        c.temperature,
        c.top_p,
        run.dist.device,
    )
    return batch, [t for t in tasks for _ in range(group)], time.perf_counter() - start


def _chunks(indices: list[int], size: int):
    for i in range(0, len(indices), size):
        yield indices[i : i + size]


@torch.no_grad()
def _logprobs(model, batch: _policy.Rollouts, rows: list[int], c: RLConfig) -> torch.Tensor:
    out = torch.zeros(batch.completion_ids.shape, dtype=torch.float32, device=batch.sequences.device)
    for mb in _chunks(rows, c.micro_batch):
        logp, _ = _policy.token_logprobs(
            model, batch.sequences[mb], batch.attention[mb], batch.prompt_width, batch.completion_ids[mb], c.temperature
        )
        out[mb] = logp
    return out


def _batch_std(rewards: torch.Tensor, d) -> float:
    """The reward std over the whole batch, every rank's groups included."""
    n, s, s2 = d.sum([float(rewards.numel()), float(rewards.sum()), float((rewards**2).sum())])
    return max(s2 / n - (s / n) ** 2, 0.0) ** 0.5 * (n / max(n - 1, 1)) ** 0.5


def update(
    run: Run,
    batch: _policy.Rollouts,
    adv: _loss.Advantages,
    group: int,
    old: torch.Tensor | None,
    ref: torch.Tensor | None,
) -> dict:
    """``num_iterations`` optimizer steps over the kept groups; entropy over every completion."""
    c = run.config
    keep = [i for i in range(batch.sequences.shape[0]) if bool(adv.keep[i // group])]
    keep_set = set(keep)
    mask = batch.completion_mask.clone()
    if c.mask_truncated:
        mask[torch.tensor(batch.truncated, dtype=torch.bool, device=mask.device)] = 0
    seq_adv = adv.values.reshape(-1).to(mask.device)
    norm = {"sequences": max(len(keep), 1), "tokens": float(mask[keep].sum()) if keep else 1.0}
    sums = {"loss": 0.0, "low": 0.0, "high": 0.0, "tokens": 0.0, "kl": 0.0, "entropy": 0.0, "ent_tokens": 0.0}
    grad_norm = 0.0
    update_now = run.dist.any(bool(keep))  # every rank steps (and all-reduces) when one has signal
    run.policy.train()
    for _ in range(c.num_iterations):
        run.optimizer.zero_grad(set_to_none=True)
        for mb in _chunks(list(range(batch.sequences.shape[0])), c.micro_batch):
            kept = [i for i in mb if i in keep_set]
            with torch.set_grad_enabled(bool(kept)):
                logp, entropy = _policy.token_logprobs(
                    run.policy,
                    batch.sequences[mb],
                    batch.attention[mb],
                    batch.prompt_width,
                    batch.completion_ids[mb],
                    c.temperature,
                )
            full = batch.completion_mask[mb].float()
            sums["entropy"] += float((entropy * full).sum())
            sums["ent_tokens"] += float(full.sum())
            if not kept:
                continue
            pos = [mb.index(i) for i in kept]
            lp = logp[pos]
            parts = _loss.policy_loss(
                c.loss,
                lp,
                old[kept] if old is not None else lp.detach(),
                seq_adv[kept],
                mask[kept],
                c.epsilon,
                c.clip_high(),
                c.beta,
                ref[kept] if ref is not None else None,
                c.max_completion_tokens,
                norm,
            )
            parts.loss.backward()
            for k, v in (
                ("loss", parts.loss),
                ("low", parts.clip_low),
                ("high", parts.clip_high),
                ("tokens", parts.tokens),
                ("kl", parts.kl_sum),
            ):
                sums[k] += float(v.detach())
        if update_now:
            grad_norm = _finish_gradients(run)
            run.optimizer.step()
    iters = c.num_iterations
    tokens = max(sums["tokens"], 1.0)
    low, high = sums["low"] / tokens, sums["high"] / tokens
    return {
        "loss": sums["loss"] / iters,
        "clip_ratio_low": low,
        "clip_ratio_high": high,
        "clip_ratio": low + high,
        "kl": sums["kl"] / tokens,
        "entropy": sums["entropy"] / iters / max(sums["ent_tokens"] / iters, 1.0),
        "grad_norm": grad_norm,
        "trained_tokens": sums["tokens"] / iters,
        "updated": float(update_now),
    }


def _finish_gradients(run: Run) -> float:
    """Average the gradients over ranks (each rank may have run a different number of
    micro-batches, which DDP's per-backward hooks cannot take), then clip."""
    import torch.distributed as dist

    params = [p for p in run.policy.parameters() if p.requires_grad]
    if run.dist.active:
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= run.dist.world_size
    limit = run.config.max_grad_norm or float("inf")
    return float(torch.nn.utils.clip_grad_norm_(params, limit))


def step(run: Run, tasks: list[RLTask], step_number: int, shuffle_rewards: torch.Generator | None = None) -> StepResult:
    c, d, G = run.config, run.dist, run.config.num_generations
    t0 = time.perf_counter()
    batch, per_row, gen_seconds = rollout(run, tasks, G)
    t_reward = time.perf_counter()
    futures = run.rewarder.submit(per_row, batch.texts)
    rows_all = list(range(batch.sequences.shape[0]))
    old = _logprobs(run.policy, batch, rows_all, c) if c.num_iterations > 1 else None
    ref = _logprobs(run.ref, batch, rows_all, c) if run.ref is not None else None
    scores: list[Score] = [f.result() for f in futures]
    reward_seconds = time.perf_counter() - t_reward

    formatted = [format_ok(t) for t in batch.texts]
    values = [reward_value(s, c.reward, f, c.format_weight) for s, f in zip(scores, formatted)]
    rewards = torch.tensor(values, dtype=torch.float32).reshape(len(tasks), G)
    if shuffle_rewards is not None:  # the control run of benchmarks/rl_learning.py
        rewards = rewards.reshape(-1)[torch.randperm(rewards.numel(), generator=shuffle_rewards)].reshape(rewards.shape)
    adv = _loss.advantages(
        rewards,
        c.scale_rewards,
        c.zero_variance_filter,
        _batch_std(rewards, d) if c.scale_rewards == "batch" and d.active else None,
    )
    stats = update(run, batch, adv, G, old, ref)

    passed = [s.passed for s in scores]
    executions = sum(s.executions for s in scores)
    metrics = {
        "pass_rate": sum(passed) / len(passed),
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()) if rewards.numel() > 1 else 0.0,
        "truncation_rate": sum(batch.truncated) / len(batch.truncated),
        "response_length": sum(batch.lengths) / len(batch.lengths),
        "zero_variance": adv.zero_variance / len(tasks),
        "format_rate": sum(formatted) / len(formatted),
        "sandbox_latency": sum(s.seconds for s in scores) / len(scores),
        "executions_per_second": executions / max(reward_seconds, 1e-9),
        "executions": float(executions),
        "generation_seconds": gen_seconds,
        "reward_seconds": reward_seconds,
        "generated_tokens": float(sum(batch.lengths)),
        **stats,
    }
    metrics["step_seconds"] = time.perf_counter() - t0
    rows = [
        {
            "step": step_number,
            "task_id": per_row[i].task_id,
            "kind": per_row[i].kind,
            "group": i // G,
            "completion": batch.texts[i],
            "reward": float(rewards.reshape(-1)[i]),
            "passed": scores[i].passed,
            "fraction": scores[i].fraction,
            "format": formatted[i],
            "truncated": batch.truncated[i],
            "length": batch.lengths[i],
            "in_loss": bool(adv.keep[i // G]),
            "detail": scores[i].detail[:500],
        }
        for i in range(len(per_row))
    ]
    group_pass = {t.task_id: sum(passed[i * G : (i + 1) * G]) / G for i, t in enumerate(tasks)}
    return StepResult(metrics, rows, group_pass, adv.zero_variance, len(tasks))


def evaluate(run: Run, tasks: list[RLTask]) -> tuple[int, int, float]:
    """(passed, samples, generated tokens) of held-out prompts at the training temperature."""
    if not tasks:
        return 0, 0, 0.0
    passed = samples = 0
    tokens = 0.0
    for i in range(0, len(tasks), max(1, run.config.prompts_per_step)):
        chunk = tasks[i : i + run.config.prompts_per_step]
        batch, per_row, _ = rollout(run, chunk, run.config.eval_generations)
        scores = run.rewarder.score(per_row, batch.texts)
        passed += sum(s.passed for s in scores)
        samples += len(scores)
        tokens += sum(batch.lengths)
    return passed, samples, tokens

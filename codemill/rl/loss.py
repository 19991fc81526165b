"""Advantages and the GRPO-family losses, as TRL computes them (``trl/trainer/grpo_trainer.py``,
``_compute_loss``), plus what TRL lacks: zero-variance groups leave the batch instead of
entering it with advantage 0, so they do not dilute the loss's normaliser (ScaleRL).

Shapes: ``rewards`` ``[P, G]`` (P prompts, G generations); per-token tensors ``[B, T]``
with ``mask`` 1 on completion tokens that get loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Advantages:
    values: torch.Tensor  # [P, G]
    keep: torch.Tensor  # [P] bool: the group enters the loss
    zero_variance: int  # groups whose rewards are all equal


def advantages(
    rewards: torch.Tensor, scale: str, zero_variance_filter: bool, batch_std: float | None = None, eps: float = 1e-4
) -> Advantages:
    """Group-centred rewards, divided by the group std, the batch std (``batch_std`` when the
    batch spans ranks) or nothing; a group with one reward value has no signal."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(mean)
    centred = rewards - mean
    if scale == "group":
        centred = centred / (std + eps)
    elif scale == "batch":
        b = batch_std if batch_std is not None else float(rewards.std()) if rewards.numel() > 1 else 0.0
        centred = centred / (b + eps)
    flat = (rewards.max(dim=1).values - rewards.min(dim=1).values) == 0
    keep = ~flat if zero_variance_filter else torch.ones_like(flat)
    return Advantages(centred, keep, int(flat.sum()))


def per_token_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of KL(policy || ref) per token (TRL, Schulman's approximation)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


@dataclass
class LossParts:
    loss: torch.Tensor
    clip_low: torch.Tensor  # sums over masked tokens, for the clip ratio
    clip_high: torch.Tensor
    tokens: torch.Tensor
    kl_sum: torch.Tensor


def policy_loss(
    kind: str,
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    max_completion_tokens: int = 1,
    normaliser: dict | None = None,
) -> LossParts:
    """One micro-batch's loss. ``adv`` is per sequence ``[B]``. ``normaliser`` holds the
    whole step's ``sequences`` and ``tokens`` so micro-batches add up to the loss of the batch."""
    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(1)
    if kind == "cispo":
        per_token = -torch.clamp(ratio, max=eps_high).detach() * a * logp
    else:
        clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
        per_token = -torch.min(ratio * a, clipped * a)
    kl = torch.zeros_like(logp)
    if beta > 0 and ref_logp is not None:
        kl = per_token_kl(logp, ref_logp)
        per_token = per_token + beta * kl
    mask = mask.to(per_token.dtype)
    norm = normaliser or {"sequences": logp.shape[0], "tokens": float(mask.sum().clamp(min=1))}
    if kind == "grpo":  # sequence mean, then mean over sequences
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).sum() / norm["sequences"]
    elif kind == "dr_grpo":  # a constant normaliser: no length bias
        loss = (per_token * mask).sum() / (norm["sequences"] * max_completion_tokens)
    else:  # dapo, cispo: token-level mean over the batch
        loss = (per_token * mask).sum() / max(norm["tokens"], 1.0)
    low = ((ratio < 1 - eps_low) & (a < 0)).to(mask.dtype) * mask
    high = ((ratio > 1 + eps_high) & (a > 0)).to(mask.dtype) * mask
    return LossParts(loss, low.sum().detach(), high.sum().detach(), mask.sum().detach(), (kl * mask).sum().detach())

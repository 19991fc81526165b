"""Advantages, the zero-variance filter and the four losses against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from codemill.rl.loss import advantages, per_token_kl, policy_loss


def test_zero_variance_groups_are_left_out_and_counted():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    adv = advantages(rewards, "group", zero_variance_filter=True)
    assert adv.zero_variance == 2
    assert adv.keep.tolist() == [False, True, False]
    assert adv.values[1].tolist() == pytest.approx([-1 / 3 / 0.57745, 2 / 3 / 0.57745, -1 / 3 / 0.57745], rel=1e-3)
    kept_all = advantages(rewards, "group", zero_variance_filter=False)
    assert kept_all.keep.all() and kept_all.zero_variance == 2


def test_batch_and_no_scaling():
    rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    none = advantages(rewards, "none", True)
    assert none.values[0].tolist() == [-0.5, 0.5]
    batch = advantages(rewards, "batch", True)
    std = float(rewards.std())
    assert batch.values[0].tolist() == pytest.approx([-0.5 / std, 0.5 / std], rel=1e-3)
    assert advantages(rewards, "batch", True, batch_std=2.0).values[0].tolist() == pytest.approx(
        [-0.25, 0.25], rel=1e-3
    )


def _inputs():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, -0.3, -4.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.5, -0.5], [-0.2, -0.3, -4.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    return logp, old, mask, adv


@pytest.mark.parametrize("kind", ["grpo", "dapo", "dr_grpo", "cispo"])
def test_losses_normalise_as_trl(kind):
    logp, old, mask, adv = _inputs()
    parts = policy_loss(kind, logp, old, adv, mask, 0.2, 0.28, max_completion_tokens=4)
    ratio = torch.exp(logp.detach() - old)
    a = adv[:, None]
    if kind == "cispo":
        per = -torch.clamp(ratio, max=0.28) * a * logp.detach()
    else:
        per = -torch.min(ratio * a, torch.clamp(ratio, 0.8, 1.28) * a)
    m = mask.float()
    expected = {
        "grpo": ((per * m).sum(1) / m.sum(1)).mean(),
        "dapo": (per * m).sum() / m.sum(),
        "cispo": (per * m).sum() / m.sum(),
        "dr_grpo": (per * m).sum() / (2 * 4),
    }[kind]
    assert float(parts.loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    parts.loss.backward()
    assert logp.grad is not None and float(logp.grad[0, 2]) == 0.0  # masked tokens get no gradient


def test_clip_counts_and_kl():
    logp, old, mask, adv = _inputs()  # token (0, 1): ratio e^0.5 = 1.65 > 1.28 with a positive advantage
    parts = policy_loss("dapo", logp, old, adv, mask, 0.2, 0.28, beta=0.1, ref_logp=old)
    assert float(parts.clip_high) == 1.0 and float(parts.clip_low) == 0.0 and float(parts.tokens) == 5.0
    kl = per_token_kl(logp.detach(), old)
    assert float(parts.kl_sum) == pytest.approx(float((kl * mask).sum()))
    assert float(kl[1].sum()) == 0.0 and float(kl[0, 1]) > 0

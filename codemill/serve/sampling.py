"""Next-token choice for a batch of rows that each have their own temperature, top_p and RNG.

Every row (one choice of one request) owns a ``torch.Generator`` and draws exactly one
uniform number from it per sampled token, whatever else is in the batch, so a seeded
request samples the same way alone or batched with others: what
batching can still change is the logits themselves, by floating-point rounding of
padded/batched matrix products, which flips a token only at near-ties.

``temperature == 0`` is greedy (argmax) and consumes no randomness.
"""

from __future__ import annotations

import secrets

import torch

_GOLDEN = 0x9E3779B97F4A7C15  # spreads (seed, choice index) over the 64-bit seed space


def row_generator(seed: int | None, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The RNG of choice ``index`` of a request: derived from ``seed``, or fresh when unseeded."""
    g = torch.Generator(device=device)
    if seed is None:
        g.manual_seed(secrets.randbits(63))
    else:
        g.manual_seed((seed + index * _GOLDEN) % (1 << 63))
    return g


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Per row, the token where the cumulative mass first exceeds ``u`` x total mass."""
    cum = probs.cumsum(dim=-1)
    target = (u * cum[:, -1]).unsqueeze(1)
    return torch.searchsorted(cum, target, right=True).squeeze(1).clamp(max=probs.shape[-1] - 1)


def sample_next(
    logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor, generators: list[torch.Generator]
) -> torch.Tensor:
    """One token per row from ``logits [rows, vocab]``; ``temperature``/``top_p`` are ``[rows]``.

    Each sampled row draws exactly one uniform number from its own generator per step;
    the choice is then made for all rows at once by inverse CDF (no per-row multinomial).
    """
    chosen = logits.argmax(dim=-1)
    sampled_rows = (temperature > 0).nonzero().flatten().tolist()
    if not sampled_rows:
        return chosen
    idx = torch.tensor(sampled_rows, device=logits.device)
    probs = torch.softmax(logits[idx].float() / temperature[idx, None], dim=-1)
    u = torch.stack([torch.rand((), generator=generators[r], device=logits.device) for r in sampled_rows])
    picked = _inverse_cdf(probs, u)
    row_top_p = top_p[idx]
    nucleus = (row_top_p < 1.0).nonzero().flatten()
    if len(nucleus):
        # Keep the smallest prefix of the sorted tokens whose mass reaches top_p (the most
        # likely token always survives, since the mass before it is 0).
        sorted_probs, sorted_ids = probs[nucleus].sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(mass_before >= row_top_p[nucleus, None], 0.0)
        picked[nucleus] = sorted_ids.gather(1, _inverse_cdf(sorted_probs, u[nucleus]).unsqueeze(1)).squeeze(1)
    chosen[idx] = picked
    return chosen

"""Next-token choice for a batch of rows that each have their own temperature, top_p and RNG.

Every row (one choice of one request) owns a ``torch.Generator``. A row draws exactly
one random number stream per step from its own generator, whatever else is in the
batch, so a seeded request samples the same way alone or batched with others: what
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


def sample_next(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                generators: list[torch.Generator]) -> torch.Tensor:
    """One token per row from ``logits [rows, vocab]``; ``temperature``/``top_p`` are ``[rows]``."""
    logits = logits.float()
    chosen = logits.argmax(dim=-1)
    sampled_rows = (temperature > 0).nonzero().flatten().tolist()
    if not sampled_rows:
        return chosen
    idx = torch.tensor(sampled_rows, device=logits.device)
    probs = torch.softmax(logits[idx] / temperature[idx, None], dim=-1)
    sorted_probs, sorted_ids = probs.sort(dim=-1, descending=True)
    # Nucleus: keep the smallest prefix of the sorted tokens whose mass reaches top_p
    # (the most likely token always survives, since the mass before it is 0).
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p[idx, None], 0.0)
    for k, row in enumerate(sampled_rows):
        pick = torch.multinomial(sorted_probs[k], 1, generator=generators[row])
        chosen[row] = sorted_ids[k, pick[0]]
    return chosen

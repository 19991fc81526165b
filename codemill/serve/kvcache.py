"""KV-cache surgery for continuous batching: join two batches, drop padding columns.

A decoding batch is left-padded: row ``r`` attends to the cache positions where its
attention-mask row is 1. Two batches join by left-padding the shorter one (zeros in the
cache, 0 in the mask) and concatenating along the batch axis; a row's RoPE positions
are already baked into its cached keys, so padding does not move it. After rows leave,
leading columns that no remaining row attends to are dropped so the width follows the
longest live row.

Only caches made of plain ``DynamicLayer``s (full attention: Llama, DeepSeek-Coder,
StarCoder2 without a window, ...) are joined; for sliding-window or quantized caches
:func:`joinable` is False and the server falls back to batch-at-a-time. This module is
the one place that knows the cache's layout; it rebuilds caches through the public
``DynamicCache(ddp_cache_data)`` constructor.
"""

from __future__ import annotations

import torch


def joinable(cache) -> bool:
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)


def _rebuild(layers: list[tuple[torch.Tensor, torch.Tensor]]):
    from transformers.cache_utils import DynamicCache

    return DynamicCache(layers)


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def join(cache_a, mask_a: torch.Tensor, cache_b, mask_b: torch.Tensor):
    """One cache and mask holding the rows of ``a`` then ``b``; returns (cache, mask)."""
    width = max(mask_a.shape[1], mask_b.shape[1])
    layers = []
    for (ka, va, _), (kb, vb, _) in zip(cache_a, cache_b):
        layers.append(
            (
                torch.cat([_left_pad(ka, width, 2), _left_pad(kb, width, 2)]),
                torch.cat([_left_pad(va, width, 2), _left_pad(vb, width, 2)]),
            )
        )
    mask = torch.cat([_left_pad(mask_a, width, 1), _left_pad(mask_b, width, 1)])
    return _rebuild(layers), mask


def drop_leading_padding(cache, mask: torch.Tensor):
    """Remove leading columns no row attends to; returns (cache, mask)."""
    attended = mask.any(dim=0)
    lead = int(attended.int().argmax()) if bool(attended.any()) else 0
    if lead == 0:
        return cache, mask
    return _rebuild([(k[:, :, lead:], v[:, :, lead:]) for k, v, _ in cache]), mask[:, lead:]

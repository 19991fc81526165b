"""Pack's token shards as training batches: positions restart per document, attention
stays inside a document, and the data order is a pure function of (seed, step).

A packed row holds several documents; ``segments`` says which one each token belongs
to (-1 on padding). From it we build, per row:

- ``position_ids`` restarting at 0 where the segment changes, so RoPE sees each document
  as if it started the sequence;
- ``labels``: the token itself (the model shifts by one) on every non-pad token,
  FIM sentinels and EOS included, and -100 on padding and on the first token of each
  document (it is not predicted from the previous document);
- a 4D additive block-causal mask ``[B, 1, L, L]`` (0 where a query may attend, the
  dtype's minimum elsewhere) for the SDPA/eager kernels. With flash-attention 2 no mask
  is built: transformers derives ``cu_seqlens`` from the restarting ``position_ids`` and
  runs the varlen kernel, which is the same computation without the L x L mask.

Data order: optimizer step ``s`` consumes sample positions ``[s*G, (s+1)*G)`` of an
endless stream where epoch ``e`` is ``permutation(n)`` seeded by ``(seed, e)``; rank ``r``
of ``W`` takes micro-batch slices of it. A resumed run at step ``s`` therefore sees
exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from codemill import io
from codemill.stage import InputError

IGNORE = -100


@dataclass(frozen=True)
class PackedSplit:
    """One split of pack's output, memory-mapped: ``tokens``/``segments`` are ``[n, seq_len]``."""

    name: str
    tokens: np.ndarray
    segments: np.ndarray

    @property
    def n_sequences(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.tokens.shape[1])


def load_split(pack_dir: str, name: str, seq_len: int | None = None) -> PackedSplit:
    """Open ``<pack_dir>/<name>/{tokens,segments}.npy`` and cut rows to ``seq_len`` windows."""
    paths = {k: io.join(pack_dir, name, f"{k}.npy") for k in ("tokens", "segments")}
    arrays = {}
    for key, path in paths.items():
        try:
            arrays[key] = np.load(io.local_path(path), mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: cannot read pack's {key} array ({e})") from e
    tokens, segments = arrays["tokens"], arrays["segments"]
    if tokens.dtype != np.uint32 or segments.dtype != np.int32:
        raise InputError(
            f"{pack_dir}/{name}: expected uint32 tokens and int32 segments, got {tokens.dtype} and {segments.dtype}"
        )
    if tokens.ndim != 2 or tokens.shape != segments.shape:
        raise InputError(
            f"{pack_dir}/{name}: tokens {tokens.shape} and segments {segments.shape} "
            "must be the same [n_sequences, seq_len] shape"
        )
    if seq_len and seq_len != tokens.shape[1]:
        tokens, segments = _windows(tokens, seq_len, pack_dir), _windows(segments, seq_len, pack_dir)
    return PackedSplit(name, tokens, segments)


def _windows(a: np.ndarray, seq_len: int, pack_dir: str) -> np.ndarray:
    n, packed = a.shape
    if seq_len > packed or packed % seq_len:
        raise InputError(
            f"{pack_dir}: seq_len {seq_len} must divide pack's seq_len {packed}; re-run pack for longer sequences"
        )
    return a.reshape(n * (packed // seq_len), seq_len)


# ---------------------------------------------------------------------------- one batch


@dataclass
class Batch:
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | None
    tokens: int  # non-pad tokens (the useful ones)
    targets: int  # labels that count in the loss

    def to(self, device) -> Batch:
        def move(t):
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            move(self.input_ids),
            move(self.position_ids),
            move(self.labels),
            move(self.attention_mask),
            self.tokens,
            self.targets,
        )

    def model_inputs(self) -> dict:
        return {
            "input_ids": self.input_ids,
            "position_ids": self.position_ids,
            "attention_mask": self.attention_mask,
            "labels": self.labels,
        }


def segment_starts(segments: np.ndarray) -> np.ndarray:
    """True where a token opens a new segment run (and at column 0)."""
    starts = np.ones(segments.shape, dtype=bool)
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    return starts


def position_ids(segments: np.ndarray) -> np.ndarray:
    """Positions that restart at 0 at every segment run (padding runs too)."""
    col = np.broadcast_to(np.arange(segments.shape[1]), segments.shape)
    run_start = np.maximum.accumulate(np.where(segment_starts(segments), col, 0), axis=1)
    return col - run_start


def block_causal_mask(segments: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """``[B, 1, L, L]`` mask: a query sees earlier keys of its own segment only.

    ``torch.bool`` gives True-means-attend (what SDPA takes under any autocast dtype);
    a float dtype gives an additive mask (0 / the dtype's minimum) for eager attention.
    Padding (-1) attends to earlier padding, so no row is empty (an empty row would give
    NaN in SDPA); padding carries no loss and no real token attends to it.
    """
    seg = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.int64))
    length = seg.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril_()
    allowed = (seg[:, :, None] == seg[:, None, :]) & causal
    if dtype == torch.bool:
        return allowed[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def mask_dtype(attn_implementation: str) -> torch.dtype | None:
    """The 4D mask each attention kernel takes: boolean for SDPA, additive for eager, none for flash-attention."""
    return {"flash_attention_2": None, "sdpa": torch.bool, "eager": torch.float32}[attn_implementation]


def make_batch(tokens: np.ndarray, segments: np.ndarray, mask_dtype: torch.dtype | None) -> Batch:
    """Model inputs for rows of a packed split; ``mask_dtype=None`` builds no 4D mask (flash-attention)."""
    segments = np.asarray(segments)
    ids = torch.from_numpy(np.asarray(tokens).astype(np.int64))
    labels = ids.clone()
    no_loss = (segments < 0) | segment_starts(segments)
    labels[torch.from_numpy(no_loss)] = IGNORE
    pos = torch.from_numpy(position_ids(segments).astype(np.int64))
    mask = block_causal_mask(segments, mask_dtype) if mask_dtype is not None else None
    return Batch(ids, pos, labels, mask, int((segments >= 0).sum()), int((~no_loss[:, 1:]).sum()))


# ---------------------------------------------------------------------------- data order


@lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def sample_rows(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Rows at positions ``[start, start+count)`` of the seeded endless epoch stream."""
    positions = np.arange(start, start + count)
    rows = np.empty(count, dtype=np.int64)
    for epoch in np.unique(positions // n):
        sel = positions // n == epoch
        rows[sel] = _epoch_order(n, seed, int(epoch))[positions[sel] % n]
    return rows


def step_rows(
    n: int, seed: int, step: int, micro: int, batch_size: int, grad_accum: int, rank: int = 0, world_size: int = 1
) -> np.ndarray:
    """The row indices of one micro-batch of one optimizer step on one rank."""
    per_step = batch_size * grad_accum * world_size
    start = step * per_step + (micro * world_size + rank) * batch_size
    return sample_rows(n, seed, start, batch_size)


def train_batch(split: PackedSplit, rows: np.ndarray, mask_dtype: torch.dtype | None) -> Batch:
    # Fancy indexing on a memmap reads just these rows; sorting keeps reads sequential
    # while the batch keeps the sampled order.
    order = np.argsort(rows, kind="stable")
    tokens = np.empty((len(rows), split.seq_len), dtype=np.uint32)
    segments = np.empty((len(rows), split.seq_len), dtype=np.int32)
    tokens[order] = split.tokens[rows[order]]
    segments[order] = split.segments[rows[order]]
    return make_batch(tokens, segments, mask_dtype)


def eval_row_batches(
    split: PackedSplit, batch_size: int, max_batches: int, rank: int = 0, world_size: int = 1
) -> list[np.ndarray]:
    """Validation rows in file order (the same rows at every evaluation), this rank's share."""
    n = split.n_sequences if max_batches == 0 else min(split.n_sequences, max_batches * batch_size)
    rows = np.arange(n)[rank::world_size]
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]

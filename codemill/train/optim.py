"""Optimizer, learning-rate schedule and DeepSpeed configs.

AdamW (beta1 0.9) with weight decay on matrices only, linear warmup then cosine decay
to ``min_lr_ratio`` of the peak, as in DeepSeek-Coder and most Llama recipes.

DeepSpeed configs live in ``codemill/train/deepspeed/*.json`` with ``"auto"`` for every
value that depends on the run (batch sizes, clipping, bf16, AdamW hyper-parameters) --
the same convention the Hugging Face Trainer integration uses, so the files work with
both. :func:`deepspeed_config` fills the ``"auto"`` values from the resolved TrainConfig.
"""

from __future__ import annotations

import json
import math
import os

import torch

from codemill import io
from codemill.stage import InputError
from codemill.train.config import DEEPSPEED_DIR, TrainConfig

BETA1 = 0.9
EPS = 1e-8


def param_groups(model, weight_decay: float) -> list[dict]:
    """Decay 2D+ weights (matmuls, embeddings); leave norms and biases alone."""
    decay, no_decay = [], []
    for _, p in sorted(model.named_parameters()):
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, warmup: int, max_steps: int, min_ratio: float) -> float:
    """Multiplier of the peak LR at ``step``: linear warmup, then cosine to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scheduler_for(optimizer, c: TrainConfig):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, c.warmup_steps, c.max_steps, c.min_lr_ratio)
    )


def adamw(model, c: TrainConfig, fused: bool):
    return torch.optim.AdamW(
        param_groups(model, c.weight_decay), lr=c.lr, betas=(BETA1, c.adam_beta2), eps=EPS, fused=fused
    )


# ---------------------------------------------------------------------------- DeepSpeed


def deepspeed_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(DEEPSPEED_DIR) if f.endswith(".json"))


def read_deepspeed_file(name_or_url: str) -> dict:
    """A config by name (``zero2``) or path/URL; fails naming it when unreadable."""
    builtin = os.path.join(DEEPSPEED_DIR, f"{name_or_url}.json")
    url = builtin if os.path.isfile(builtin) else name_or_url
    try:
        return json.loads(io.read_text(url))
    except io.StorageError as e:
        raise InputError(
            f"DeepSpeed config {name_or_url!r}: not a known name ({', '.join(deepspeed_names())}) "
            f"nor a readable file ({e})"
        ) from e
    except json.JSONDecodeError as e:
        raise InputError(f"DeepSpeed config {url}: not valid JSON ({e})") from e


def _fill(node, values: dict, path: str = ""):
    if isinstance(node, dict):
        return {k: _fill(v, values, f"{path}.{k}" if path else k) for k, v in node.items()}
    if node == "auto":
        if path not in values:
            raise InputError(f"DeepSpeed config: no value for 'auto' at {path}")
        return values[path]
    return node


def deepspeed_config(name_or_url: str, c: TrainConfig, world_size: int) -> dict:
    """The config with every ``"auto"`` resolved; the batch arithmetic DeepSpeed asserts holds."""
    raw = read_deepspeed_file(name_or_url)
    values = {
        "train_micro_batch_size_per_gpu": c.batch_size,
        "gradient_accumulation_steps": c.grad_accum,
        "train_batch_size": c.batch_size * c.grad_accum * world_size,
        "gradient_clipping": c.grad_clip,
        "bf16.enabled": c.precision == "bf16",
        "fp16.enabled": False,
        "optimizer.params.lr": c.lr,
        "optimizer.params.betas": [BETA1, c.adam_beta2],
        "optimizer.params.eps": EPS,
        "optimizer.params.weight_decay": c.weight_decay,
    }
    config = _fill(raw, values)
    stage = config.get("zero_optimization", {}).get("stage")
    if stage not in (1, 2, 3):
        raise InputError(f"DeepSpeed config {name_or_url}: zero_optimization.stage must be 1, 2 or 3, got {stage!r}")
    return config

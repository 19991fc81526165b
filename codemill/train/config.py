"""TrainConfig, named presets and the checks that run before any compute.

A preset is a small YAML file in ``codemill/train/presets/`` with two sections:
``model`` (a Llama shape, used when training from scratch) and ``train`` (defaults
for the TrainConfig fields). Every TrainConfig field that is ``None`` takes the
preset's value; a flag or a KFP ``options`` entry overrides it. The first line of
each preset is the exact command that runs it (torchtune's habit).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from codemill.stage import InputError, fill_from_preset, read_preset
from codemill.stage import preset_names as stage_preset_names

PRESET_DIR = os.path.join(os.path.dirname(__file__), "presets")
DEEPSPEED_DIR = os.path.join(os.path.dirname(__file__), "deepspeed")

# Keys a preset's `model` section may hold: LlamaConfig fields we set on purpose.
MODEL_KEYS = {
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "rope_theta",
    "rope_scaling",
    "rms_norm_eps",
    "tie_word_embeddings",
    "vocab_size",
    "initializer_range",
}
PRECISIONS = ("fp32", "bf16")
ATTENTION = ("sdpa", "eager", "flash_attention_2")


def _opt(default=None, help: str = "", **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """How to train; fields left at None come from the preset."""

    preset: str = _opt("tiny", "named preset in codemill/train/presets (model shape + training defaults)")
    base_model: str = _opt("", "continue from this HF checkpoint (local path or s3://); empty trains from scratch")
    max_steps: int | None = _opt(None, "optimizer steps (None: the preset's)")
    seq_len: int | None = _opt(None, "tokens per sequence; must divide pack's seq_len (None: pack's)")
    batch_size: int | None = _opt(None, "sequences per micro-batch per device (None: the preset's)")
    grad_accum: int | None = _opt(None, "micro-batches per optimizer step (None: the preset's)")
    lr: float | None = _opt(None, "peak learning rate (None: the preset's)")
    min_lr_ratio: float | None = _opt(None, "final learning rate as a fraction of the peak (cosine floor)")
    warmup_steps: int | None = _opt(None, "linear warmup steps before the cosine decay")
    weight_decay: float | None = _opt(None, "AdamW weight decay (not applied to norms and biases)")
    adam_beta2: float | None = _opt(None, "AdamW beta2 (beta1 is 0.9)")
    grad_clip: float | None = _opt(None, "clip the global gradient norm to this value (0 = off)")
    precision: str | None = _opt(None, "fp32 or bf16 (autocast; fp32 master weights)", choices=PRECISIONS)
    attn_implementation: str | None = _opt(
        None, "sdpa/eager (4D block-causal mask) or flash_attention_2 (varlen from position ids)", choices=ATTENTION
    )
    gradient_checkpointing: bool | None = _opt(None, "recompute activations in the backward pass to save memory")
    deepspeed: str = _opt("", "DeepSpeed config: zero2, zero3_offload or a JSON path/URL (GPUs only)", metavar="CONFIG")
    eval_every: int | None = _opt(None, "steps between validation passes")
    eval_batches: int | None = _opt(None, "validation micro-batches per pass (0 = the whole val split)")
    log_every: int | None = _opt(None, "steps between metric logs")
    checkpoint_every: int | None = _opt(None, "steps between checkpoints (0 = only at the end and on SIGTERM)")
    keep_checkpoints: int = _opt(2, "how many recent checkpoints to keep")
    resume: bool = _opt(True, "resume from the latest complete checkpoint in the output, if any")
    num_threads: int = _opt(0, "CPU threads for torch (0 = torch's default)")
    peak_tflops: float = _opt(0.0, "peak bf16 TFLOP/s per GPU for MFU (0 = from the GPU's name)")
    seed: int = _opt(0, "random seed: model init and data order")

    def ensure_valid(self) -> TrainConfig:
        """Raise InputError naming what cannot work, with the preset filled in (see :func:`check`)."""
        resolve(self)
        return self


def preset_names() -> list[str]:
    return stage_preset_names(PRESET_DIR)


def load_preset(name: str) -> dict:
    """The preset's ``{"model": {...}, "train": {...}}``; unknown names and keys fail."""
    data = read_preset(PRESET_DIR, name, "preset")
    unknown = set(data) - {"model", "train"}
    if unknown:
        raise InputError(f"preset {name}: unknown sections {sorted(unknown)} (expected model, train)")
    model, train = data.get("model") or {}, data.get("train") or {}
    bad_model = set(model) - MODEL_KEYS
    if bad_model:
        raise InputError(f"preset {name}: unknown model keys {sorted(bad_model)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"preset", "seed"}
    bad_train = set(train) - fields
    if bad_train:
        raise InputError(f"preset {name}: unknown train keys {sorted(bad_train)}")
    return {"model": model, "train": train}


def resolve(config: TrainConfig) -> TrainConfig:
    """A copy of ``config`` with every None field filled from the preset, then checked."""
    resolved = fill_from_preset(config, load_preset(config.preset)["train"], "train", may_stay_none=("seq_len",))
    check(resolved)
    return resolved


def check(c: TrainConfig) -> None:
    """Reject settings that cannot work, before anything is loaded."""
    positive = {
        "max_steps": c.max_steps,
        "batch_size": c.batch_size,
        "grad_accum": c.grad_accum,
        "log_every": c.log_every,
        "eval_every": c.eval_every,
        "keep_checkpoints": c.keep_checkpoints,
    }
    for name, value in positive.items():
        if value < 1:
            raise InputError(f"train config: {name} must be >= 1, got {value}")
    if c.seq_len is not None and c.seq_len < 2:
        raise InputError(f"train config: seq_len must be >= 2, got {c.seq_len}")
    if c.lr <= 0 or not 0 <= c.min_lr_ratio <= 1:
        raise InputError(f"train config: need lr > 0 and 0 <= min_lr_ratio <= 1 (got {c.lr}, {c.min_lr_ratio})")
    if c.warmup_steps < 0 or c.eval_batches < 0 or c.checkpoint_every < 0 or c.grad_clip < 0:
        raise InputError("train config: warmup_steps, eval_batches, checkpoint_every and grad_clip must be >= 0")
    if c.precision not in PRECISIONS:
        raise InputError(f"train config: precision must be one of {PRECISIONS}, got {c.precision!r}")
    if c.attn_implementation not in ATTENTION:
        raise InputError(f"train config: attn_implementation must be one of {ATTENTION}, got {c.attn_implementation!r}")


def config_flags(c: TrainConfig) -> list[str]:
    """``codemill train`` flags that reproduce ``c`` (None and empty fields are left out)."""
    flags = []
    for key, value in sorted(dataclasses.asdict(c).items()):
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif value not in ("", None):
            flags += [flag, str(value)]
    return flags

"""SftConfig, its named presets and the checks that run before anything is loaded.

A preset is a YAML file in ``codemill/sft/presets/`` whose keys are SftConfig fields; a
field left at ``None`` takes the preset's value, a flag or a KFP ``options`` entry
overrides it. The first line of each preset is the exact command that runs it
(torchtune's habit).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from codemill.stage import InputError, fill_from_preset, read_preset
from codemill.stage import preset_names as stage_preset_names

PRESET_DIR = os.path.join(os.path.dirname(__file__), "presets")
PRECISIONS = ("fp32", "bf16")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
# Fields a run and its resume may differ in; every other field must match the checkpoint's.
RESUME_MAY_CHANGE = {"logging_steps", "eval_steps", "save_steps", "keep_checkpoints", "resume", "num_threads"}


def _opt(default=None, help: str = "", **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class SftConfig:
    """How to fine-tune; fields left at None come from the preset."""

    preset: str = _opt("tiny", "named preset in codemill/sft/presets")
    max_steps: int | None = _opt(None, "optimizer steps; 0 = run --epochs over the data (None: the preset's)")
    epochs: float | None = _opt(None, "passes over the training examples when max_steps is 0")
    lr: float | None = _opt(None, "peak learning rate (None: the preset's)")
    batch_size: int | None = _opt(
        None, "rows per micro-batch per device (with --packing a row holds several examples, up to seq_len tokens)"
    )
    grad_accum: int | None = _opt(None, "micro-batches per optimizer step")
    seq_len: int | None = _opt(
        None,
        "longest example in tokens; longer ones are cut at the end, ones left with no assistant token are quarantined",
    )
    warmup_ratio: float | None = _opt(None, "share of the steps spent in linear warmup (cosine decay after)")
    weight_decay: float | None = _opt(None, "AdamW weight decay")
    packing: bool | None = _opt(None, "padding-free packing (best-fit decreasing, position ids restart per example)")
    lora: bool | None = _opt(None, "train a LoRA adapter (peft) instead of all weights; model/ holds it merged")
    lora_r: int | None = _opt(None, "LoRA rank")
    lora_alpha: int | None = _opt(None, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float | None = _opt(None, "LoRA dropout")
    precision: str | None = _opt(None, "fp32 or bf16", choices=PRECISIONS)
    attn_implementation: str | None = _opt(
        None, "attention kernel; flash_attention_2 falls back to sdpa on CPU", choices=ATTENTION
    )
    gradient_checkpointing: bool | None = _opt(None, "recompute activations in the backward pass")
    deepspeed: str = _opt(
        "", "DeepSpeed config: zero2, zero3_offload (codemill/train/deepspeed) or a JSON path", metavar="CONFIG"
    )
    eval_fraction: float | None = _opt(None, "share of examples without a split (synth data) held out for val_loss")
    eval_steps: int | None = _opt(None, "optimizer steps between val_loss passes")
    logging_steps: int | None = _opt(None, "optimizer steps between metric logs")
    save_steps: int | None = _opt(None, "optimizer steps between checkpoints (a checkpoint is also written on SIGTERM)")
    keep_checkpoints: int = _opt(2, "how many recent checkpoints to keep")
    resume: bool = _opt(True, "resume from the latest checkpoint in the output, if any")
    num_threads: int = _opt(0, "CPU threads for torch (0 = torch's default)")
    seed: int = _opt(0, "random seed: held-out choice, data order, LoRA init")

    def ensure_valid(self) -> SftConfig:
        """Fail naming the field; checks the preset resolves too."""
        resolve(self)
        return self


def preset_names() -> list[str]:
    return stage_preset_names(PRESET_DIR)


def load_preset(name: str) -> dict:
    data = read_preset(PRESET_DIR, name, "sft preset")
    unknown = set(data) - ({f.name for f in dataclasses.fields(SftConfig)} - {"preset", "seed"})
    if unknown:
        raise InputError(f"sft preset {name}: unknown keys {sorted(unknown)}")
    return data


def resolve(config: SftConfig) -> SftConfig:
    """A copy of ``config`` with every None field filled from the preset, then checked."""
    resolved = fill_from_preset(config, load_preset(config.preset), "sft")
    check(resolved)
    return resolved


def check(c: SftConfig) -> None:
    rules = [
        (c.max_steps >= 0, f"max_steps must be >= 0, got {c.max_steps}"),
        (c.max_steps > 0 or c.epochs > 0, "give max_steps > 0 or epochs > 0"),
        (c.lr > 0, f"lr must be > 0, got {c.lr}"),
        (c.batch_size >= 1 and c.grad_accum >= 1, "batch_size and grad_accum must be >= 1"),
        (c.seq_len >= 8, f"seq_len must be >= 8, got {c.seq_len}"),
        (0 <= c.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {c.warmup_ratio}"),
        (0 <= c.eval_fraction < 1, f"eval_fraction must be in [0, 1), got {c.eval_fraction}"),
        (
            min(c.eval_steps, c.logging_steps, c.save_steps, c.keep_checkpoints) >= 1,
            "eval_steps, logging_steps, save_steps and keep_checkpoints must be >= 1",
        ),
        (
            not c.lora or (c.lora_r >= 1 and c.lora_alpha >= 1 and 0 <= c.lora_dropout < 1),
            "lora needs lora_r >= 1, lora_alpha >= 1 and 0 <= lora_dropout < 1",
        ),
        (c.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {c.precision!r}"),
        (c.attn_implementation in ATTENTION, f"attn_implementation must be one of {ATTENTION}"),
    ]
    for ok, message in rules:
        if not ok:
            raise InputError(f"sft config: {message}")


def config_flags(c: SftConfig) -> list[str]:
    """``codemill sft`` flags that reproduce ``c`` (empty fields left out)."""
    flags = []
    for key, value in sorted(dataclasses.asdict(c).items()):
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif value not in ("", None):
            flags += [flag, str(value)]
    return flags

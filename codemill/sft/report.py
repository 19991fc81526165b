"""What an SFT run leaves for people: ``stats.json``, ``loss_curve.png`` and ``report.md``."""

from __future__ import annotations

import math
import os

from codemill.train.report import plot_loss_curve


def stats(
    log_history: list[dict],
    val_loss_start: float,
    val_loss: float,
    session_tokens: int,
    runtime: float,
    info: dict,
    *,
    examples: int,
    val_examples: int,
    loaded,
    chat_template: str,
    resumed_from_step: int,
    steps: int,
    preset: str,
    lora: bool,
) -> dict:
    """The stage's stats (docs/sft.md): losses, the share of tokens with loss, counts, throughput."""
    losses = [h for h in log_history if "loss" in h]
    return {
        "examples": examples,
        "val_examples": val_examples,
        "rows": loaded.rows,
        "quarantined": len(loaded.quarantine),
        "by_reason": _count(loaded.quarantine),
        "unused_task_kinds": loaded.unused_task_kinds,
        "truncated": info["truncated"],
        "tokens": info["tokens"],
        "assistant_tokens": info["assistant_tokens"],
        "assistant_token_fraction": info["assistant_tokens"] / max(info["tokens"], 1),
        "train_loss_start": losses[0]["loss"] if losses else float("nan"),
        "train_loss_end": losses[-1]["loss"] if losses else float("nan"),
        "val_loss_start": val_loss_start,
        "val_loss": val_loss,
        "steps": steps,
        "train_seconds": round(runtime, 3),
        "session_tokens": session_tokens,
        "tokens_per_second": session_tokens / runtime if runtime else 0.0,
        "resumed_from_step": resumed_from_step,
        "chat_template": chat_template,
        "preset": preset,
        "lora": lora,
    }


def _count(quarantine: list[dict]) -> dict:
    out: dict[str, int] = {}
    for q in quarantine:
        out[q["reason"]] = out.get(q["reason"], 0) + 1
    return dict(sorted(out.items()))


def metrics(stats: dict) -> dict[str, float]:
    return {k: float(v) for k, v in stats.items() if isinstance(v, (int, float)) and v == v}


def write(folder: str, stats: dict, log_history: list[dict], config: dict, command: str) -> list[str]:
    """``loss_curve.png`` and ``report.md`` in ``folder``; returns their paths."""
    curve, path = os.path.join(folder, "loss_curve.png"), os.path.join(folder, "report.md")
    history = [{"step": h["step"], "loss": h["loss"]} for h in log_history if "loss" in h]
    start = stats["val_loss_start"]
    val_history = [{"step": 0, "val_loss": start}] if math.isfinite(start) else []  # before the first step
    val_history += [{"step": h["step"], "val_loss": h["eval_loss"]} for h in log_history if "eval_loss" in h]
    plot_loss_curve(history, val_history, curve)
    with open(path, "w", encoding="utf-8") as f:
        f.write(markdown(stats, config, command))
    return [curve, path]


def markdown(stats: dict, config: dict, command: str) -> str:
    rows = [
        ("examples (train / val)", f"{stats['examples']} / {stats['val_examples']}"),
        ("rows read / quarantined", f"{stats['rows']} / {stats['quarantined']} {stats['by_reason'] or ''}"),
        ("tokens (share with loss)", f"{stats['tokens']:,} ({stats['assistant_token_fraction']:.1%} assistant)"),
        ("train loss start -> end", f"{stats['train_loss_start']:.4f} -> {stats['train_loss_end']:.4f}"),
        ("val loss start -> end", f"{stats['val_loss_start']:.4f} -> {stats['val_loss']:.4f}"),
        ("steps", stats["steps"]),
        ("tokens/s (all tokens, this session)", f"{stats['tokens_per_second']:,.0f}"),
        ("chat template", stats["chat_template"]),
        ("LoRA", "yes (merged into model/)" if stats["lora"] else "no"),
        ("resumed from step", stats["resumed_from_step"]),
    ]
    lines = ["# sft", "", f"Preset `{config['preset']}`.", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [
        "",
        "![loss curve](loss_curve.png)",
        "",
        "The model is in `model/` (Hugging Face format, with its chat template).",
        "",
        "Reproduce:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)

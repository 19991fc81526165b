"""What a training run leaves for people: the stats record, the loss curve, report.md,
system metrics and MFU."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import psutil
import torch

from codemill.train.checkpoint import TrainState

# Dense bf16 peak TFLOP/s per GPU (vendor datasheets); MFU is left out for other devices.
PEAK_TFLOPS = {"A100": 312.0, "H100": 989.0, "H200": 989.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def peak_tflops(configured: float) -> float:
    if configured > 0:
        return configured
    if not torch.cuda.is_available():
        return 0.0
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), 0.0)


def mfu(tokens_per_second: float, flops_per_token: float, peak_tflops: float, devices: int) -> float | None:
    """Model FLOPs utilisation: the model FLOP/s achieved over the devices' peak; None when the peak is unknown."""
    if not peak_tflops:
        return None
    return tokens_per_second * flops_per_token / (peak_tflops * 1e12 * devices)


@dataclass
class TrainStats:
    """``stats.json`` (docs/architecture.md, docs/train.md); ``mfu`` only where the device's peak is known."""

    steps: int
    tokens: int  # non-pad tokens trained, all ranks
    train_seconds: float  # inside steps only
    tokens_per_second: float
    val_loss_start: float
    val_loss_end: float
    val_perplexity_start: float
    val_perplexity_end: float
    train_loss_end: float  # at the last log; NaN when nothing was logged in this process
    parameters: int
    non_embedding_parameters: int
    matmul_parameters: int  # what 6N counts: all but the input embedding lookup
    seq_len: int
    global_batch_sequences: int
    world_size: int
    device: str
    preset: str
    resumed_from_step: int  # 0 when the run started fresh
    mfu: float | None = None

    @classmethod
    def of(cls, state: TrainState, sizes: dict, flops_per_token: float, peak_tflops: float, **run) -> TrainStats:
        """A finished run's stats from its state, parameter counts and the remaining fields (``run``)."""
        tokens_per_second = state.tokens / max(state.train_seconds, 1e-9)
        val_end = state.val_history[-1]["val_loss"]
        return cls(
            steps=state.step,
            tokens=state.tokens,
            train_seconds=round(state.train_seconds, 3),
            tokens_per_second=tokens_per_second,
            val_loss_start=state.val_loss_start,
            val_loss_end=val_end,
            val_perplexity_start=perplexity(state.val_loss_start),
            val_perplexity_end=perplexity(val_end),
            train_loss_end=state.history[-1]["loss"] if state.history else float("nan"),
            **sizes,
            **run,
            mfu=mfu(tokens_per_second, flops_per_token, peak_tflops, run["world_size"]),
        )

    def to_dict(self) -> dict:
        values = asdict(self)
        if self.mfu is None:
            del values["mfu"]
        return values

    def metrics(self) -> dict[str, float]:
        """The numeric fields, for the tracker."""
        return {k: v for k, v in self.to_dict().items() if isinstance(v, (int, float))}


def system_metrics(device: torch.device) -> dict[str, float]:
    """Process and machine load, logged beside the training metrics."""
    proc = psutil.Process()
    metrics = {
        "system/cpu_utilization_percentage": psutil.cpu_percent(interval=None),
        "system/system_memory_usage_percentage": psutil.virtual_memory().percent,
        "system/process_rss_megabytes": proc.memory_info().rss / 2**20,
    }
    if device.type == "cuda":
        metrics["system/gpu_memory_allocated_megabytes"] = torch.cuda.memory_allocated(device) / 2**20
        metrics["system/gpu_max_memory_allocated_megabytes"] = torch.cuda.max_memory_allocated(device) / 2**20
    return metrics


def plot_loss_curve(history: list[dict], val_history: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if history:
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], label="train loss")
    if val_history:
        ax.plot([v["step"] for v in val_history], [v["val_loss"] for v in val_history], "o-", label="val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def write(folder: str, stats: TrainStats, state: TrainState, config: dict, command: str) -> list[str]:
    """``loss_curve.png`` and ``report.md`` in ``folder``; returns their paths."""
    curve, report = os.path.join(folder, "loss_curve.png"), os.path.join(folder, "report.md")
    plot_loss_curve(state.history, state.val_history, curve)
    with open(report, "w", encoding="utf-8") as f:
        f.write(report_markdown(stats, config, command))
    return [curve, report]


def report_markdown(stats: TrainStats, config: dict, command: str) -> str:
    rows = [
        ("steps", stats.steps),
        ("non-pad tokens trained", f"{stats.tokens:,}"),
        ("tokens/s (non-pad, all ranks)", f"{stats.tokens_per_second:,.0f}"),
        ("parameters", f"{stats.parameters:,}"),
        ("val loss start -> end", f"{stats.val_loss_start:.4f} -> {stats.val_loss_end:.4f}"),
        ("val perplexity start -> end", f"{stats.val_perplexity_start:.1f} -> {stats.val_perplexity_end:.1f}"),
        ("train loss (last log)", f"{stats.train_loss_end:.4f}"),
        ("devices", f"{stats.world_size} x {stats.device}"),
        ("resumed from step", stats.resumed_from_step),
    ]
    if stats.mfu:
        rows.append(("MFU", f"{stats.mfu:.1%}"))
    lines = [
        "# train",
        "",
        f"Preset `{config['preset']}`"
        + (f", continued from `{config['base_model']}`" if config["base_model"] else ", from scratch")
        + ".",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += [
        "",
        "![loss curve](loss_curve.png)",
        "",
        "The model is in `model/` (Hugging Face format).",
        "",
        "Reproduce:",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)

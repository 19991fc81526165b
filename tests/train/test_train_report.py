"""stats.json keeps its documented keys; MFU is one formula, checked against docs/train.md."""

from __future__ import annotations

import math

import pytest

from codemill.train.checkpoint import TrainState
from codemill.train.report import TrainStats, mfu

# docs/architecture.md and docs/train.md list these, in this order.
STATS_KEYS = [
    "steps",
    "tokens",
    "train_seconds",
    "tokens_per_second",
    "val_loss_start",
    "val_loss_end",
    "val_perplexity_start",
    "val_perplexity_end",
    "train_loss_end",
    "parameters",
    "non_embedding_parameters",
    "matmul_parameters",
    "seq_len",
    "global_batch_sequences",
    "world_size",
    "device",
    "preset",
    "resumed_from_step",
]
SIZES = {"parameters": 100, "non_embedding_parameters": 60, "matmul_parameters": 80}
RUN = {
    "seq_len": 128,
    "global_batch_sequences": 8,
    "world_size": 2,
    "device": "cpu",
    "preset": "tiny",
    "resumed_from_step": 4,
}


def _state() -> TrainState:
    return TrainState(
        step=6,
        tokens=6000,
        train_seconds=2.0,
        val_loss_start=6.0,
        history=[{"step": 6, "loss": 5.0}],
        val_history=[{"step": 0, "val_loss": 6.0}, {"step": 6, "val_loss": 5.5}],
    )


def test_stats_have_the_documented_keys_and_mfu_only_with_a_known_peak():
    stats = TrainStats.of(_state(), SIZES, flops_per_token=1e6, peak_tflops=0.0, **RUN)
    values = stats.to_dict()
    assert list(values) == STATS_KEYS
    assert (values["tokens_per_second"], values["val_loss_end"], values["train_loss_end"]) == (3000.0, 5.5, 5.0)
    assert values["val_perplexity_end"] == pytest.approx(math.exp(5.5))
    with_peak = TrainStats.of(_state(), SIZES, flops_per_token=1e6, peak_tflops=1.0, **RUN).to_dict()
    assert list(with_peak) == [*STATS_KEYS, "mfu"]
    assert with_peak["mfu"] == pytest.approx(3000 * 1e6 / (1e12 * 2))


def test_mfu_reproduces_the_documented_a100_estimate():
    # docs/train.md: deepseek-coder-1.3b, 10.10 GFLOPs/token, A100 312 TFLOP/s: 12,400 tokens/s is 40 % MFU.
    assert mfu(12_400, 10.10e9, 312.0, 1) == pytest.approx(0.40, abs=0.005)
    assert mfu(8 * 12_400, 10.10e9, 312.0, 8) == pytest.approx(mfu(12_400, 10.10e9, 312.0, 1))
    assert mfu(12_400, 10.10e9, 0.0, 1) is None

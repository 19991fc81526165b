"""Preemption: SIGTERM writes a checkpoint, a rerun resumes and ends with the same weights."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.tracking import NoOpTracker
from codemill.train import TrainConfig, TrainingInterrupted, train
from codemill.train.checkpoint import complete_steps
from tests.train.conftest import fast_options


class SigtermAtStep(NoOpTracker):
    """Sends this process a real SIGTERM when metrics for ``step`` are logged."""

    def __init__(self, step: int):
        self.step = step
        self.steps_logged: list[int] = []

    def log_metrics(self, metrics, step=None):
        if "loss" in metrics:
            self.steps_logged.append(step)
            if step == self.step:
                os.kill(os.getpid(), signal.SIGTERM)


def _weights(output: str) -> dict:
    return load_file(os.path.join(output, "model", "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tiny_pack, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("straight"))
    stats = train(TrainConfig(**fast_options()), tiny_pack, out, NoOpTracker())
    return out, stats


def test_resume_after_sigterm_gives_the_same_final_weights(tiny_pack, uninterrupted, tmp_path):
    straight, straight_stats = uninterrupted
    out = str(tmp_path / "interrupted")
    tracker = SigtermAtStep(4)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(TrainConfig(**fast_options(checkpoint_every=0)), tiny_pack, out, tracker)
    assert stopped.value.step == 4 and complete_steps(out) == [4]
    assert not os.path.exists(os.path.join(out, "model"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back

    stats = train(TrainConfig(**fast_options(checkpoint_every=0)), tiny_pack, out, NoOpTracker())
    assert stats["resumed_from_step"] == 4 and stats["steps"] == straight_stats["steps"] == 6
    assert stats["tokens"] == straight_stats["tokens"]
    assert stats["val_loss_start"] == straight_stats["val_loss_start"]
    a, b = _weights(straight), _weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_outputs_follow_the_contract(uninterrupted):
    out, stats = uninterrupted
    on_disk = json.load(open(os.path.join(out, "stats.json")))
    for key in ("steps", "tokens_per_second", "val_loss_start", "val_loss_end"):
        assert on_disk[key] == stats[key]
    assert stats["val_loss_end"] < stats["val_loss_start"] - 0.3
    assert stats["tokens_per_second"] > 0
    assert complete_steps(out) == [4, 6]  # checkpoint_every 2, keep 2
    for name in (
        "loss_curve.png",
        "report.md",
        "model/config.json",
        "model/generation_config.json",
        "model/tokenizer.json",
    ):
        assert os.path.exists(os.path.join(out, name)), name
    assert open(os.path.join(out, "loss_curve.png"), "rb").read(4) == b"\x89PNG"


def test_trained_model_loads_and_generates(uninterrupted):
    out, _ = uninterrupted
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))
    model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "model"))
    ids = tok("def main(", return_tensors="pt")
    gen = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert gen.shape[1] == ids["input_ids"].shape[1] + 8


def test_rerun_with_other_settings_refuses_to_resume(tiny_pack, uninterrupted):
    from codemill.stage import InputError

    out, _ = uninterrupted
    with pytest.raises(InputError, match="other settings.*lr"):
        train(TrainConfig(**fast_options(lr=1e-4)), tiny_pack, out, NoOpTracker())

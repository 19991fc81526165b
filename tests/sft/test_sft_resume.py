"""Preemption: SIGTERM writes a checkpoint, the rerun resumes from it and ends where a straight run ends."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
import torch
from safetensors.torch import load_file

from codemill.sft import SftConfig, SftInterrupted, sft
from codemill.sft.checkpoints import complete_steps
from codemill.stage import InputError
from codemill.tracking import NoOpTracker
from tests.sft.conftest import fast


class SigtermAtStep(NoOpTracker):
    """Sends this process a real SIGTERM when the metrics of ``step`` are logged."""

    def __init__(self, step: int):
        self.step = step

    def log_metrics(self, metrics, step=None):
        if "loss" in metrics and step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def weights(output: str) -> dict:
    return load_file(os.path.join(output, "model", "model.safetensors"))


OPTIONS = fast(max_steps=20, save_steps=50, logging_steps=5, eval_fraction=0.25, packing=True)  # padding-free rows


def test_sigterm_checkpoints_and_the_rerun_resumes(tiny_model_dir, chat_data, tmp_path):
    straight = str(tmp_path / "straight")
    expected = sft(SftConfig(**OPTIONS), tiny_model_dir, chat_data, straight)

    out = str(tmp_path / "interrupted")
    with pytest.raises(SftInterrupted) as stopped:
        sft(SftConfig(**OPTIONS), tiny_model_dir, chat_data, out, SigtermAtStep(10))
    assert stopped.value.step == 11  # the step after the signal ends with a checkpoint
    assert complete_steps(out) == [11] and not os.path.exists(os.path.join(out, "model"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back

    stats = sft(SftConfig(**OPTIONS), tiny_model_dir, chat_data, out)
    assert stats["resumed_from_step"] == 11 and stats["steps"] == 20
    assert stats["val_loss_start"] == expected["val_loss_start"]
    assert stats["train_loss_start"] == expected["train_loss_start"]  # the log history came back too
    a, b = weights(straight), weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_a_resume_with_other_settings_is_refused(tiny_model_dir, chat_data, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(SftInterrupted):
        sft(SftConfig(**OPTIONS), tiny_model_dir, chat_data, out, SigtermAtStep(5))
    with pytest.raises(InputError, match=r"other settings \['lr'\]"):
        sft(SftConfig(**{**OPTIONS, "lr": 1e-4}), tiny_model_dir, chat_data, out)


def test_the_cli_exits_143_on_sigterm_and_resumes(tiny_model_dir, chat_data, tmp_path, monkeypatch, capsys):
    from codemill.cli import main
    from codemill.sft import callbacks

    out = str(tmp_path / "out")
    flags = [
        "sft",
        "--model",
        tiny_model_dir,
        "--data",
        chat_data,
        "--output",
        out,
        "--no-tracking",
        *[f"--{k.replace('_', '-')}={v}" for k, v in OPTIONS.items() if k != "packing"],
        "--packing",
    ]
    log = callbacks.TrackerCallback.on_log

    def log_then_sigterm(self, args, state, control, logs=None, **kwargs):
        if state.global_step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return log(self, args, state, control, logs, **kwargs)

    monkeypatch.setattr(callbacks.TrackerCallback, "on_log", log_then_sigterm)
    assert main(flags) == 143 and "rerun to resume" in capsys.readouterr().out
    monkeypatch.setattr(callbacks.TrackerCallback, "on_log", log)
    assert main(flags) == 0
    assert json.load(open(os.path.join(out, "stats.json")))["resumed_from_step"] == 6


# max_steps below the steps per epoch (6 train examples): the case where resuming took one step too many
FINISHED = fast(max_steps=4, batch_size=1, save_steps=50, eval_fraction=0.25)


def test_a_rerun_of_a_finished_run_changes_nothing(tiny_model_dir, chat_data, tmp_path):
    out = str(tmp_path / "out")
    first = sft(SftConfig(**FINISHED), tiny_model_dir, chat_data, out)
    assert complete_steps(out) == [4] and first["steps"] == 4
    model_file = os.path.join(out, "model", "model.safetensors")
    before = open(model_file, "rb").read(), os.path.getmtime(model_file)

    again = sft(SftConfig(**FINISHED), tiny_model_dir, chat_data, out)  # a KFP retry of a finished step
    assert again == first and complete_steps(out) == [4]
    assert (open(model_file, "rb").read(), os.path.getmtime(model_file)) == before
    assert not os.path.exists(os.path.join(out, "checkpoints", "checkpoint-5"))


def test_a_finished_checkpoint_without_model_is_exported_without_training(tiny_model_dir, chat_data, tmp_path):
    out = str(tmp_path / "out")
    first = sft(SftConfig(**FINISHED), tiny_model_dir, chat_data, out)
    expected = weights(out)
    os.remove(os.path.join(out, "stats.json"))  # the upload of model/ and stats.json failed
    shutil.rmtree(os.path.join(out, "model"))

    stats = sft(SftConfig(**FINISHED), tiny_model_dir, chat_data, out)
    assert complete_steps(out) == [4] and stats["steps"] == 4 and stats["resumed_from_step"] == 4
    for key in ("train_loss_start", "train_loss_end", "val_loss_start", "val_loss", "examples", "tokens"):
        assert stats[key] == first[key], key
    got = weights(out)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name

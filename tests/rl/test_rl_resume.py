"""Preemption: SIGTERM writes a checkpoint, a rerun resumes and ends as the uninterrupted run."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from codemill import runner
from codemill.tracking import NoOpTracker
from codemill.train import TrainingInterrupted
from codemill.train.checkpoint import complete_steps
from tests.rl.conftest import fast_config

STEPS = 4


class SigtermAtStep(NoOpTracker):
    """Sends this process a real SIGTERM when the monitors of ``step`` are logged."""

    def __init__(self, step: int):
        self.step = step

    def log_metrics(self, metrics, step=None):
        if "pass_rate" in metrics and step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def _run(model, tasks, output, tracker=None):
    config = fast_config(max_steps=STEPS, prompts_per_step=3, eval_every=2)
    return runner.run("rl", config, output=output, model=model, tasks=tasks, tracker=tracker)


@pytest.fixture(scope="module")
def uninterrupted(task_model, tasks_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("straight"))
    return out, _run(task_model, tasks_dir, out)


def test_resume_after_sigterm_continues_as_the_uninterrupted_run(task_model, tasks_dir, uninterrupted, tmp_path):
    straight, straight_stats = uninterrupted
    out = str(tmp_path / "interrupted")
    with pytest.raises(TrainingInterrupted) as stopped:
        _run(task_model, tasks_dir, out, SigtermAtStep(2))
    assert stopped.value.step == 2 and complete_steps(out) == [2]
    assert not os.path.exists(os.path.join(out, "model")) and not os.path.exists(os.path.join(out, "stats.json"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back

    stats = _run(task_model, tasks_dir, out)
    assert stats["resumed_from_step"] == 2 and stats["steps"] == STEPS
    assert stats["monitors"]["pass_rate"] == straight_stats["monitors"]["pass_rate"]
    assert stats["heldout"] == straight_stats["heldout"]
    for step in range(1, STEPS + 1):
        name = f"rollouts/step-{step:08d}.parquet"
        assert open(os.path.join(out, name), "rb").read() == open(os.path.join(straight, name), "rb").read(), name
    a, b = (
        load_file(os.path.join(straight, "model", "model.safetensors")),
        load_file(os.path.join(out, "model", "model.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_made_with_other_settings_is_refused(task_model, tasks_dir, uninterrupted):
    from codemill.stage import InputError

    straight, _ = uninterrupted
    config = fast_config(max_steps=STEPS + 1, prompts_per_step=3, eval_every=2, lr=0.5)
    with pytest.raises(InputError, match="other settings.*lr"):
        runner.run("rl", config, output=straight, model=task_model, tasks=tasks_dir)

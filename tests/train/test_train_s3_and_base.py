"""Continued pretraining from a base checkpoint, with input, base model and output all on S3."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from codemill import io
from codemill.tracking import NoOpTracker
from codemill.train import TrainConfig, TrainingInterrupted, train
from codemill.train.checkpoint import complete_steps
from tests.train.conftest import fast_options
from tests.train.test_train_resume import SigtermAtStep


@pytest.fixture()
def bucket(s3_endpoint):
    io.s3_client().create_bucket(Bucket="codemill-train")
    return "s3://codemill-train"


def test_continue_from_s3_base_model_resume_and_publish_to_s3(bucket, tiny_pack, tiny_model_dir, tmp_path):
    io.upload_dir(tiny_pack, f"{bucket}/pack")
    io.upload_dir(tiny_model_dir, f"{bucket}/base")
    out = f"{bucket}/train"
    options = fast_options(base_model=f"{bucket}/base", checkpoint_every=0)

    with pytest.raises(TrainingInterrupted):
        train(TrainConfig(**options), f"{bucket}/pack", out, SigtermAtStep(2))
    assert complete_steps(out) == [2]
    stats = train(TrainConfig(**options), f"{bucket}/pack", out, NoOpTracker())
    assert stats["resumed_from_step"] == 2 and stats["steps"] == 6
    assert stats["val_loss_end"] < stats["val_loss_start"]

    local = io.download_dir(f"{out}/model", str(tmp_path / "model"))
    trained = AutoModelForCausalLM.from_pretrained(local)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert trained.config.hidden_size == base.config.hidden_size == 64  # the base's shape, not the preset's
    start = load_file(os.path.join(tiny_model_dir, "model.safetensors"))
    end = load_file(os.path.join(local, "model.safetensors"))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(start[name], end[name])
    # Continued, not restarted: the trained weights stay close to the base's.
    assert (end[name] - start[name]).abs().max() < 0.1
    assert io.exists(f"{out}/stats.json") and io.exists(f"{out}/loss_curve.png")

"""Presets, DeepSpeed configs, CLI flags, and bad configuration failing before any compute."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from codemill.stage import InputError
from codemill.tracking import NoOpTracker
from codemill.train import TrainConfig, load_preset, preset_names, resolve, train
from codemill.train.config import DEEPSPEED_DIR, PRESET_DIR
from codemill.train.model import llama_config
from codemill.train.optim import deepspeed_config, deepspeed_names
from tests.train.conftest import fast_options

# Parameter counts of the published checkpoints these presets copy the shapes of.
EXPECTED_PARAMS = {"deepseek-coder-1.3b": 1.35e9, "deepseek-coder-6.7b": 6.74e9}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_validates_and_opens_with_its_command(name, tiny_model_dir):
    first_line = open(os.path.join(PRESET_DIR, f"{name}.yaml"), encoding="utf-8").readline()
    assert first_line.startswith("# ") and "train" in first_line and f"--preset {name}" in first_line
    c = resolve(TrainConfig(preset=name))
    assert all(v is not None for k, v in vars(c).items() if k != "seq_len")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = llama_config(load_preset(name)["model"], tok, "sdpa")
    with torch.device("meta"):  # shapes only, no memory
        model = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    if name in EXPECTED_PARAMS:
        assert abs(n - EXPECTED_PARAMS[name]) / EXPECTED_PARAMS[name] < 0.02, n
        assert c.precision == "bf16" and c.gradient_checkpointing and c.warmup_steps > 0
        assert config.vocab_size == 32256 and config.max_position_embeddings == 16384
        assert config.rope_parameters["rope_theta"] == 100000.0
    else:
        assert n < 5e6 and c.precision == "fp32"


def test_preset_values_yield_to_explicit_overrides():
    c = resolve(TrainConfig(preset="tiny", max_steps=7, lr=1e-4))
    assert (c.max_steps, c.lr) == (7, 1e-4) and c.batch_size == load_preset("tiny")["train"]["batch_size"]


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(InputError, match="unknown preset 'huge'.*tiny"):
        resolve(TrainConfig(preset="huge"))


@pytest.mark.parametrize(
    "override,match", [({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"), ({"precision": "fp8"}, "precision")]
)
def test_impossible_values_are_rejected(override, match):
    with pytest.raises(InputError, match=match):
        resolve(TrainConfig(**override))


def test_seq_len_above_model_positions_fails_before_training(tiny_pack, tiny_model_dir, tmp_path):
    base = tmp_path / "short-base"
    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.max_position_embeddings = 64
    AutoModelForCausalLM.from_config(config).save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(base)
    with pytest.raises(InputError, match="seq_len 128 is above the model's max_position_embeddings 64"):
        train(TrainConfig(**fast_options(base_model=str(base))), tiny_pack, str(tmp_path / "out"), NoOpTracker())
    assert not os.path.exists(tmp_path / "out" / "checkpoints")


def test_seq_len_must_divide_the_packed_length(tiny_pack, tmp_path):
    with pytest.raises(InputError, match="seq_len 100 must divide pack's seq_len 128"):
        train(TrainConfig(**fast_options(seq_len=100)), tiny_pack, str(tmp_path), NoOpTracker())


def test_vocabulary_mismatch_fails_before_training(tiny_pack, tmp_path):
    small = {"model": {**load_preset("tiny")["model"], "vocab_size": 100}}
    tok = AutoTokenizer.from_pretrained(os.path.join(tiny_pack, "tokenizer"))
    from codemill.train.model import check_compatible

    with pytest.raises(InputError, match="vocabulary mismatch.*512 ids.*100 rows"):
        check_compatible(llama_config(small["model"], tok, "sdpa"), tok, {"vocab_size": 512}, 128, "preset x")


def test_base_model_with_another_tokenizer_is_refused(tiny_pack, tiny_model_dir, tmp_path):
    from tests.conftest import build_tiny_tokenizer

    base = tmp_path / "base"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(base)
    build_tiny_tokenizer(str(base), vocab_size=400)
    with pytest.raises(InputError, match="tokenizer differs from pack's"):
        train(TrainConfig(**fast_options(base_model=str(base))), tiny_pack, str(tmp_path / "o"), NoOpTracker())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without GPUs")
def test_deepspeed_without_gpus_fails_with_a_clear_message(tiny_pack, tmp_path):
    with pytest.raises(InputError, match="DeepSpeed needs GPUs"):
        train(TrainConfig(**fast_options(deepspeed="zero2")), tiny_pack, str(tmp_path), NoOpTracker())


@pytest.mark.parametrize("name", ["zero2", "zero3_offload"])
def test_deepspeed_configs_have_the_keys_the_trainer_integration_needs(name):
    raw = json.load(open(os.path.join(DEEPSPEED_DIR, f"{name}.json")))
    for key in (
        "train_batch_size",
        "train_micro_batch_size_per_gpu",
        "gradient_accumulation_steps",
        "gradient_clipping",
        "bf16",
        "optimizer",
        "zero_optimization",
    ):
        assert key in raw, key
    assert raw["train_micro_batch_size_per_gpu"] == "auto" and raw["bf16"]["enabled"] == "auto"
    zero = raw["zero_optimization"]
    if name == "zero3_offload":
        assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == "cpu"
        assert zero["offload_param"]["device"] == "cpu" and zero["stage3_gather_16bit_weights_on_model_save"]
    else:
        assert zero["stage"] == 2
    c = resolve(TrainConfig(preset="deepseek-coder-1.3b"))
    resolved = deepspeed_config(name, c, world_size=8)
    assert "auto" not in json.dumps(resolved)
    assert resolved["train_batch_size"] == c.batch_size * c.grad_accum * 8
    assert resolved["bf16"]["enabled"] is True and resolved["optimizer"]["params"]["lr"] == c.lr


def test_unknown_deepspeed_config_is_named(tmp_path):
    with pytest.raises(InputError, match="zero9.*zero2, zero3_offload"):
        deepspeed_config("zero9", resolve(TrainConfig()), 1)
    assert deepspeed_names() == ["zero2", "zero3_offload"]


def test_cli_flags_reach_the_config():
    import argparse

    from codemill.stage import config_from_args
    from codemill.train import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "--input",
            "p",
            "--output",
            "o",
            "--max-steps",
            "9",
            "--seq-len",
            "64",
            "--lr",
            "0.01",
            "--batch-size",
            "2",
            "--base-model",
            "s3://b/m",
            "--deepspeed",
            "zero2",
            "--no-resume",
            "--seed",
            "3",
        ]
    )
    c = config_from_args(TrainConfig, args)
    assert (c.max_steps, c.seq_len, c.lr, c.batch_size, c.base_model, c.deepspeed, c.resume, c.seed) == (
        9,
        64,
        0.01,
        2,
        "s3://b/m",
        "zero2",
        False,
        3,
    )
    assert c.grad_accum is None  # unset flags keep "from the preset"


def test_numbers_from_a_kfp_dict_parameter_are_coerced_to_the_field_types():
    # KFP hands `options: dict` over as a protobuf Struct: every number is a float.
    c = resolve(TrainConfig(**{"max_steps": 4.0, "batch_size": 2.0, "lr": 1, "eval_batches": 0.0}))
    assert (c.max_steps, c.batch_size, c.eval_batches) == (4, 2, 0) and isinstance(c.max_steps, int)
    assert isinstance(c.lr, float)
    with pytest.raises(InputError, match="max_steps must be an integer"):
        resolve(TrainConfig(max_steps=2.5))

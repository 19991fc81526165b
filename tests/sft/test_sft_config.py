"""Every preset loads and resolves; bad settings fail naming the field; KFP floats are coerced back."""

from __future__ import annotations

import os

import pytest

from codemill import runner
from codemill.sft.config import PRESET_DIR, SftConfig, load_preset, preset_names, resolve
from codemill.stage import InputError


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_and_opens_with_its_command(name):
    resolved = resolve(SftConfig(preset=name))
    assert all(v is not None for v in vars(resolved).values())
    first = open(os.path.join(PRESET_DIR, f"{name}.yaml")).readline()
    assert first.startswith("# codemill sft --model ") and f"--preset {name}" in first


def test_the_a100_preset_is_lora_in_bf16_with_flash_attention():
    preset = load_preset("deepseek-coder-6.7b-lora")
    assert preset["lora"] and preset["precision"] == "bf16" and preset["attn_implementation"] == "flash_attention_2"
    assert preset["gradient_checkpointing"] and preset["packing"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"preset": "huge"}, "unknown sft preset 'huge'"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"max_steps": 0, "epochs": 0.0}, "give max_steps > 0 or epochs > 0"),
        ({"seq_len": 4}, "seq_len must be >= 8"),
        ({"eval_fraction": 1.0}, "eval_fraction must be in"),
        ({"lora": True, "lora_r": 0}, "lora needs lora_r >= 1"),
        ({"precision": "fp8"}, "precision must be one of"),
    ],
)
def test_bad_settings_fail_before_anything_loads(overrides, message):
    with pytest.raises(InputError, match=message):
        SftConfig(**overrides).ensure_valid()


def test_kfp_options_are_coerced_and_unknown_keys_refused():
    config = runner.kfp_config("sft", {"max_steps": 10.0, "lr": 1, "lora": True}, {"preset": "tiny", "seed": 3})
    assert (config.max_steps, config.lr, config.lora, config.seed) == (10, 1.0, True, 3)
    with pytest.raises(InputError, match="unknown setting"):
        runner.kfp_config("sft", {"learning_rate": 1e-4})

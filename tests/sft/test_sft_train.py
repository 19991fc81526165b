"""A tiny model fine-tuned on chat data learns its answers, with loss on assistant tokens only."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.sft import SftConfig, sft, template
from codemill.sft.data import load
from tests.sft.conftest import QA, conversations, fast, generate_task, write_synth, write_tasks


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("sft-data")
    synth = write_synth(root / "synth", conversations())
    tasks = write_tasks(root / "tasks", [generate_task(i) for i in range(4)] + [generate_task(9, "heldout")])
    return f"{synth},{tasks}"


@pytest.fixture(scope="module")
def trained(tiny_model_dir, data_dirs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sft-out"))
    return out, sft(SftConfig(**fast(max_steps=120, lr=5e-3)), tiny_model_dir, data_dirs, out)


def test_loss_falls_and_greedy_decoding_gives_the_trained_answers(trained):
    out, stats = trained
    assert stats["train_loss_end"] < stats["train_loss_start"] / 5
    assert stats["val_loss"] < stats["val_loss_start"]  # the held-out task: same format, unseen function
    model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "model"))
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))
    prompts = [c[:-1] for c in conversations()]
    right = stopped = 0
    for messages, (_, answer) in zip(prompts, QA):
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = model.generate(**enc, max_new_tokens=16, do_sample=False)[0, enc["input_ids"].shape[1] :]
        right += tok.decode(ids, skip_special_tokens=True) == answer
        stopped += ids[-1].item() == tok.convert_tokens_to_ids("<|im_end|>")  # it learned to end its turn
    print(f"{right}/{len(QA)} answers reproduced, {stopped} ended with <|im_end|>")
    assert right >= len(QA) - 1 and stopped >= len(QA) - 1


def test_model_folder_loads_with_its_chat_template(trained, tiny_model_dir):
    out, stats = trained
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))
    assert stats["chat_template"] == "chatml" and tok.chat_template == template.CHATML
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    config = json.load(open(os.path.join(out, "model", "config.json")))
    assert config["vocab_size"] == len(tok) == len(AutoTokenizer.from_pretrained(tiny_model_dir)) + 2


def test_assistant_token_fraction_matches_a_hand_count(trained, data_dirs):
    out, stats = trained
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    examples = load(data_dirs, 0.0, 0).train
    total = sum(1 + len(ids(tok.apply_chat_template(e.messages, tokenize=False))) for e in examples)
    assistant = sum(
        len(ids(m["content"])) + len(ids("<|im_end|>\n"))
        for e in examples
        for m in e.messages
        if m["role"] == "assistant"
    )
    assert stats["examples"] == len(examples) == 12 and stats["val_examples"] == 1
    assert (stats["tokens"], stats["assistant_tokens"]) == (total, assistant)
    assert stats["assistant_token_fraction"] == pytest.approx(assistant / total)
    assert 0.1 < stats["assistant_token_fraction"] < 0.5


def test_outputs_follow_the_contract(trained):
    out, stats = trained
    on_disk = json.load(open(os.path.join(out, "stats.json")))
    for key in (
        "train_loss_start",
        "train_loss_end",
        "val_loss",
        "assistant_token_fraction",
        "examples",
        "tokens_per_second",
    ):
        assert on_disk[key] == stats[key], key
    assert stats["tokens_per_second"] > 0 and stats["steps"] == 120 and stats["resumed_from_step"] == 0
    assert open(os.path.join(out, "loss_curve.png"), "rb").read(4) == b"\x89PNG"
    assert "![loss curve](loss_curve.png)" in open(os.path.join(out, "report.md")).read()
    assert "codemill sft --model" in open(os.path.join(out, "report.md")).read()


def test_padding_free_rows_on_sdpa_give_the_loss_of_separate_examples(trained):
    """What --packing relies on without flash-attention: transformers turns restarting position
    ids into a block-diagonal mask, so packed examples do not see each other. Only without a KV
    cache (training sets use_cache=False; with one, the position ids are not looked at)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    out, _ = trained
    model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "model"), attn_implementation="sdpa").eval()
    tok = AutoTokenizer.from_pretrained(os.path.join(out, "model"))
    encoded = [template.encode(tok, c, 128) for c in conversations()[:3]]
    rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]

    def token_losses(batch):
        with torch.no_grad():
            inputs = {k: v for k, v in batch.items() if k in ("input_ids", "position_ids", "attention_mask")}
            logits = model(**inputs, use_cache=False).logits
        labels = batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), reduction="none")
        return losses[labels.flatten() != -100]

    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    separate = torch.cat(
        [token_losses(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)([r])) for r in rows]
    )
    assert torch.allclose(token_losses(packed), separate, atol=1e-5)


def test_lora_trains_an_adapter_and_writes_merged_weights(tiny_model_dir, tmp_path):
    folder = write_synth(tmp_path / "synth", conversations())
    out = str(tmp_path / "out")
    stats = sft(
        SftConfig(**fast(max_steps=12, lr=1e-2, lora=True, lora_r=4, lora_alpha=8)), tiny_model_dir, folder, out
    )
    assert stats["lora"] and stats["train_loss_end"] < stats["train_loss_start"]
    assert os.path.exists(os.path.join(out, "adapter", "adapter_config.json"))
    model = AutoModelForCausalLM.from_pretrained(os.path.join(out, "model"))  # plain weights, no peft needed
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_same_inputs_and_seed_give_the_same_weights(tiny_model_dir, chat_data, tmp_path):
    options = fast(max_steps=6, eval_fraction=0.25)
    a, b, c = (str(tmp_path / name) for name in "abc")
    sft(SftConfig(**options), tiny_model_dir, chat_data, a)
    sft(SftConfig(**options), tiny_model_dir, chat_data, b)
    sft(SftConfig(**{**options, "seed": 1}), tiny_model_dir, chat_data, c)
    weights = [open(os.path.join(d, "model", "model.safetensors"), "rb").read() for d in (a, b, c)]
    assert weights[0] == weights[1] and weights[0] != weights[2]

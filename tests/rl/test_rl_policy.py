"""Sampling and token scoring: left-padded batches score each token as the unpadded row
would, EOS ends a completion, and chat models get their template."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.rl import policy as _policy


def test_padded_batch_log_probs_equal_each_unpadded_row(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [_policy.encode_prompt(tok, text, False, 64) for text in ("def f(x):", "import os\nprint(os.sep)\n# a")]
    assert len(prompts[0]) != len(prompts[1])  # so one row is left-padded
    torch.manual_seed(0)
    batch = _policy.sample(model, tok, prompts, 2, 6, 1.0, 1.0, torch.device("cpu"))
    with torch.no_grad():
        logp, entropy = _policy.token_logprobs(
            model, batch.sequences, batch.attention, batch.prompt_width, batch.completion_ids, 1.0
        )
    for i, prompt in enumerate([p for p in prompts for _ in range(2)]):
        n = batch.lengths[i]
        row = torch.tensor([prompt + batch.completion_ids[i, :n].tolist()])
        with torch.no_grad():
            alone = torch.log_softmax(model(input_ids=row).logits[0, len(prompt) - 1 : -1].float(), -1)
        expected = alone.gather(-1, batch.completion_ids[i, :n, None]).squeeze(-1)
        assert torch.allclose(logp[i, :n], expected, atol=1e-4), i
    assert (entropy > 0).all()


def test_eos_ends_a_completion_and_the_limit_truncates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    torch.manual_seed(1)
    # a high temperature flattens the random model's distribution, so EOS (1 of 512) turns up in some rows
    batch = _policy.sample(
        model, tok, [_policy.encode_prompt(tok, "x = 1", False, 64)], 64, 12, 50.0, 1.0, torch.device("cpu")
    )
    assert any(batch.truncated) and not all(batch.truncated)
    for i in range(64):
        ids = batch.completion_ids[i].tolist()
        mask = batch.completion_mask[i].tolist()
        assert sum(mask) == batch.lengths[i] and mask == sorted(mask, reverse=True)
        if batch.truncated[i]:
            assert batch.lengths[i] == 12 and tok.eos_token_id not in ids
        else:
            assert ids[batch.lengths[i] - 1] == tok.eos_token_id and batch.texts[i] == tok.decode(
                ids[: batch.lengths[i] - 1], skip_special_tokens=True
            )


def test_chat_prompts_use_the_template(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = "{% for m in messages %}USER: {{ m['content'] }}\n{% endfor %}ASSISTANT:"
    ids = _policy.encode_prompt(tok, "add two numbers", True, 512)
    assert tok.decode(ids) == "USER: add two numbers\nASSISTANT:"
    assert _policy.encode_prompt(tok, "add two numbers", True, 3) == ids[-3:]  # cut from the left

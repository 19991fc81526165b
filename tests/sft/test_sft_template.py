"""Labels only on assistant tokens, computed from the chat template; ChatML installed when a base has none."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from codemill.sft import template
from codemill.stage import InputError

CONVERSATION = [
    {"role": "system", "content": "You write Python."},
    {"role": "user", "content": "Square a number."},
    {"role": "assistant", "content": "def square(x):\n    return x * x"},
    {"role": "user", "content": "And cube?"},
    {"role": "assistant", "content": "def cube(x):\n    return x ** 3"},
]
# A DeepSeek-Coder-Instruct-shaped template (plain-text headers, its own end-of-turn text).
INSTRUCT = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + '\n' }}"
    "{% elif m['role'] == 'user' %}{{ '### Instruction:\n' + m['content'] + '\n' }}"
    "{% else %}{{ '### Response:\n' + m['content'] + '\n<|EOT|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)


@pytest.fixture()
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def hand_count(tokenizer, conversation, turn_end: str) -> int:
    """Assistant tokens counted by hand: each reply's tokens, then the template's end-of-turn text."""
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return sum(len(ids(m["content"])) + len(ids(turn_end)) for m in conversation if m["role"] == "assistant")


def test_chatml_is_installed_when_the_base_has_none(tokenizer):
    assert not tokenizer.chat_template
    vocab = len(tokenizer)
    assert template.ensure_chat_template(tokenizer) == "chatml"
    assert len(tokenizer) == vocab + 2  # <|im_start|>, <|im_end|> as special tokens
    text = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou write Python.<|im_end|>\n<|im_start|>user\nSquare a number.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in template.end_of_turn_ids(tokenizer)


def test_labels_are_the_assistant_tokens_only(tokenizer):
    template.ensure_chat_template(tokenizer)
    enc = template.encode(tokenizer, CONVERSATION, seq_len=1024)
    assert enc.input_ids[0] == tokenizer.bos_token_id and not enc.truncated
    learned = tokenizer.decode([t for t, label in zip(enc.input_ids, enc.labels) if label != template.IGNORE])
    assert learned == "".join(m["content"] + "<|im_end|>\n" for m in CONVERSATION if m["role"] == "assistant")
    ignored = tokenizer.decode([t for t, label in zip(enc.input_ids, enc.labels) if label == template.IGNORE])
    for m in CONVERSATION:  # every system/user turn and every role header carries no loss
        assert (m["content"] in ignored) == (m["role"] != "assistant")
    assert ignored.count("<|im_start|>assistant\n") == 2
    assert enc.assistant_tokens == hand_count(tokenizer, CONVERSATION, "<|im_end|>\n")
    assert all(label in (template.IGNORE, tid) for tid, label in zip(enc.input_ids, enc.labels))


def test_a_base_template_is_kept_and_its_turn_end_trained(tokenizer):
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|EOT|>"]})
    tokenizer.chat_template = INSTRUCT
    assert template.ensure_chat_template(tokenizer) == "base" and tokenizer.chat_template == INSTRUCT
    enc = template.encode(tokenizer, CONVERSATION, seq_len=1024)
    learned = tokenizer.decode([t for t, label in zip(enc.input_ids, enc.labels) if label != template.IGNORE])
    assert learned == "".join(m["content"] + "\n<|EOT|>\n" for m in CONVERSATION if m["role"] == "assistant")
    assert enc.input_ids.count(tokenizer.bos_token_id) == 1  # the template's BOS, not a second one


def test_truncation_keeps_the_start(tokenizer):
    template.ensure_chat_template(tokenizer)
    full = template.encode(tokenizer, CONVERSATION, seq_len=1024)
    cut = template.encode(tokenizer, CONVERSATION, seq_len=20)
    assert cut.truncated and cut.input_ids == full.input_ids[:20] and cut.labels == full.labels[:20]


def test_a_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    tokenizer.chat_template = "{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(InputError, match="concatenation of its turns"):
        template.encode(tokenizer, CONVERSATION, seq_len=1024)

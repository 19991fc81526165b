"""--prompt-style chat: EvalPlus's instruction through the model's chat template, the code taken back out."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer

from codemill.evaluate import chat
from codemill.evaluate.generation import Generator
from codemill.stage import InputError

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'


def test_the_turns_are_evalplus_instruction_and_prefill():
    messages, prefill = chat.humaneval_turns(PROMPT)
    assert messages == [
        {
            "role": "user",
            "content": (
                "Please provide a self-contained Python script that solves the following problem in a markdown code "
                f"block:\n```\n{PROMPT.strip()}\n```\n"
            ),
        }
    ]
    assert prefill == (
        "Below is a Python script with a self-contained function that solves the problem and passes "
        "corresponding tests:\n```python\n"
    )


@pytest.mark.parametrize(
    "reply, code",
    [
        ("def add(a, b):\n    return a + b\n```\nThis adds.", "def add(a, b):\n    return a + b\n"),
        ("    return a + b\n", "    return a + b\n"),  # cut at max_new_tokens: all of it
        ("```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a + b\n"),
        ("```\n", ""),
    ],
)
def test_the_code_is_what_precedes_the_closing_fence(reply, code):
    assert chat.extract_code(reply) == code


@pytest.fixture()
def chat_model(tiny_model_dir, tmp_path):
    from codemill.sft.template import ensure_chat_template

    path = str(tmp_path / "model")
    shutil.copytree(tiny_model_dir, path)
    tok = AutoTokenizer.from_pretrained(path)
    ensure_chat_template(tok)
    tok.save_pretrained(path)  # the embedding is not resized: only prompts are encoded here
    return path


def test_chat_prompts_use_the_template_and_end_inside_the_code_block(chat_model):
    gen = Generator(chat_model, device="cpu")
    ids = gen.encode_chat(*chat.humaneval_turns(PROMPT))
    text = gen.tokenizer.decode(ids)
    assert ids[0] == gen.tokenizer.bos_token_id
    assert text.endswith(
        "<|im_start|>assistant\nBelow is a Python script with a self-contained function that "
        "solves the problem and passes corresponding tests:\n```python\n"
    )
    assert "<|im_end|>" not in text.split("<|im_start|>assistant")[1]  # the reply is open, not a finished turn
    plain = gen.encode_chat([{"role": "user", "content": "hi"}])
    assert gen.tokenizer.decode(plain).endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_a_model_without_a_chat_template_is_refused_naming_it(tiny_model_dir):
    gen = Generator(tiny_model_dir, device="cpu")
    with pytest.raises(InputError, match=f"{tiny_model_dir}: the model has no chat template"):
        gen.encode_chat([{"role": "user", "content": "hi"}])

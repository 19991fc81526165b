"""Incremental detokenization and stop sequences, on the tiny model's byte-level BPE tokenizer."""

import pytest
from transformers import AutoTokenizer

from codemill.serve.textstream import ChoiceText

TEXT = "héllo wörld 你好 def foo():\n    return 1  # ünïcode ✓\n"


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def feed(choice: ChoiceText, ids) -> list[str]:
    out = []
    for i in ids:
        out.append(choice.push(i))
        if choice.finish_reason:
            break
    return out


def test_deltas_rebuild_text_with_multibyte_characters(tok):
    ids = tok.encode(TEXT, add_special_tokens=False)
    choice = ChoiceText(tok, max_tokens=1000, eos_ids=frozenset([tok.eos_token_id]))
    deltas = feed(choice, ids + [tok.eos_token_id])
    assert "".join(deltas) == TEXT
    assert all("\ufffd" not in d for d in deltas)  # half characters are never sent
    assert choice.finish_reason == "stop" and len(choice.tokens) == len(ids) + 1


def test_max_tokens_ends_with_length(tok):
    ids = tok.encode(TEXT, add_special_tokens=False)
    choice = ChoiceText(tok, max_tokens=5)
    deltas = feed(choice, ids)
    assert choice.finish_reason == "length" and len(choice.tokens) == 5
    assert "".join(deltas) == tok.decode(ids[:5])


def test_stop_sequence_is_cut_and_never_streamed(tok):
    ids = tok.encode(TEXT, add_special_tokens=False)
    choice = ChoiceText(tok, max_tokens=1000, stop=["return", "zzz"])
    deltas = feed(choice, ids)
    assert choice.finish_reason == "stop"
    assert "".join(deltas) == TEXT[: TEXT.index("return")]
    assert not any("ret" in d for d in deltas)  # the start of the stop sequence was held back


def test_text_held_back_for_a_stop_prefix_is_released_when_it_diverges(tok):
    ids = tok.encode("abc abd", add_special_tokens=False)
    choice = ChoiceText(tok, max_tokens=len(ids), stop=["abx"])
    assert "".join(feed(choice, ids)) == "abc abd"
    assert choice.finish_reason == "length"


def test_push_after_finish_is_an_error(tok):
    choice = ChoiceText(tok, max_tokens=1)
    choice.push(5)
    with pytest.raises(RuntimeError):
        choice.push(6)

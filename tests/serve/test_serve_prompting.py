"""FIM prompts use the model's own sentinels; sentinel-looking user text stays plain text."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from codemill.serve.prompting import DEEPSEEK_SENTINELS, NoFimSentinels, PromptBuilder, codemill_sentinels


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_codemill_sentinels_are_deepseeks():
    assert codemill_sentinels() == DEEPSEEK_SENTINELS


def test_psm_layout(tok):
    builder = PromptBuilder(tok)
    begin, hole, end = (tok.convert_tokens_to_ids(t) for t in DEEPSEEK_SENTINELS)
    prefix, suffix = "def add(a, b):\n    ", "\n    return c\n"
    ids = builder.build(prefix, suffix)
    p, s = tok.encode(prefix, add_special_tokens=False), tok.encode(suffix, add_special_tokens=False)
    assert ids == [begin] + p + [hole] + s + [end]
    assert builder.build(prefix) == p


def test_sentinel_text_inside_user_code_is_not_a_sentinel(tok):
    builder = PromptBuilder(tok)
    hole_id = tok.convert_tokens_to_ids(DEEPSEEK_SENTINELS[1])
    ids = builder.build(f"x = '{DEEPSEEK_SENTINELS[1]}'", "y = 1")
    assert ids.count(hole_id) == 1
    assert tok.decode(ids[1:ids.index(hole_id)]) == f"x = '{DEEPSEEK_SENTINELS[1]}'"


def test_model_without_sentinels_refuses_suffix():
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(["def f(x): return x"] * 10, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    builder = PromptBuilder(PreTrainedTokenizerFast(tokenizer_object=raw))
    assert not builder.supports_fim
    assert builder.build("def f")
    with pytest.raises(NoFimSentinels):
        builder.build("def f", "return x")

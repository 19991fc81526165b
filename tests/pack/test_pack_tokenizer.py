"""The tokenizer: a standard Hugging Face directory with DeepSeek-Coder's special tokens,
and code encoded as text even where it spells a special token."""

from __future__ import annotations

import numpy as np
import pytest
from pack_fixtures import package_files

from codemill.pack import tokenizer as tk
from codemill.pack.fim import FIM_BEGIN, FIM_END, FIM_HOLE, psm_prompt
from codemill.stage import InputError

TRICKY = f"s = '{FIM_BEGIN}' + \"{FIM_HOLE}\"  # {FIM_END} {tk.EOS} {tk.BOS}\nnaïve = 'héllo wörld 漢字 😀'\n"


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    texts = [r.content for r in package_files("requests")] + [TRICKY]
    directory = str(tmp_path_factory.mktemp("tok"))
    tk.save_trained(tk.train_bpe(texts, vocab_size=700, min_frequency=2), directory, seq_len=256)
    return directory


def test_special_tokens_come_first_and_the_directory_loads_in_transformers(trained_dir):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(trained_dir)
    assert [hf.bos_token, hf.eos_token, hf.pad_token] == [tk.BOS, tk.EOS, tk.PAD]
    assert hf.convert_tokens_to_ids([tk.BOS, tk.EOS, tk.PAD, FIM_BEGIN, FIM_HOLE, FIM_END]) == [0, 1, 2, 3, 4, 5]
    assert len(hf) == 700
    # the saved post-processor adds BOS, as every training unit starts with it; a PSM
    # prompt string becomes exactly the sentinel layout the packer writes
    ids = hf(psm_prompt("def f(x):\n    return ", "\n"))["input_ids"]
    assert ids[:2] == [0, 3] and 4 in ids and ids[-1] == 5


def test_sentinel_text_inside_code_is_never_a_special_token(trained_dir):
    enc = tk.TextEncoder(trained_dir)
    ids = enc.encode([TRICKY])[0]
    assert not np.isin(ids, enc.special_ids).any()
    assert enc.decode(ids) == TRICKY
    assert int(enc.byte_lengths[ids].sum()) == len(TRICKY.encode("utf-8"))
    # while the tokenizer's normal parsing would have matched them
    assert 3 in enc.tokenizer.__class__.from_file(f"{trained_dir}/tokenizer.json").encode(TRICKY).ids


def test_reusing_a_tokenizer_adds_only_the_missing_special_tokens(trained_dir, tmp_path):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    # a base model's byte-level tokenizer that knows EOS only, under its own name
    base = Tokenizer.from_file(f"{trained_dir}/tokenizer.json")
    base_dir = str(tmp_path / "base")
    PreTrainedTokenizerFast(tokenizer_object=base, eos_token=tk.EOS).save_pretrained(base_dir)
    again = tk.save_reused(base_dir, str(tmp_path / "same"))
    assert again == []  # every special string is already in its vocabulary
    enc = tk.TextEncoder(str(tmp_path / "same"))
    assert enc.ids == {"bos": 0, "eos": 1, "pad": 2, "fim_begin": 3, "fim_hole": 4, "fim_end": 5}


def test_reusing_a_foreign_tokenizer_keeps_its_eos_and_appends_the_rest(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    gpt = Tokenizer(models.BPE())
    gpt.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    gpt.decoder = decoders.ByteLevel()
    gpt.train_from_iterator(
        [r.content for r in package_files("idna")],
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    PreTrainedTokenizerFast(tokenizer_object=gpt, eos_token="<|endoftext|>").save_pretrained(str(tmp_path / "gpt"))
    added = tk.save_reused(str(tmp_path / "gpt"), str(tmp_path / "out"))
    assert added == sorted([tk.BOS, tk.PAD, FIM_BEGIN, FIM_HOLE, FIM_END])
    enc = tk.TextEncoder(str(tmp_path / "out"))
    assert enc.ids["eos"] == 0  # the base model's own end of text
    assert sorted(enc.ids[k] for k in ("bos", "pad", "fim_begin", "fim_hole", "fim_end")) == list(range(400, 405))
    assert enc.vocab_size == 405
    ids = enc.encode([TRICKY])[0]
    assert enc.decode(ids) == TRICKY and not np.isin(ids, enc.special_ids).any()


def test_a_tokenizer_that_is_not_byte_level_bpe_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([tk.BOS, tk.EOS, tk.PAD, FIM_BEGIN, FIM_HOLE, FIM_END, "[UNK]", "x"])}
    word = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    word.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=word, bos_token=tk.BOS, eos_token=tk.EOS, pad_token=tk.PAD
    ).save_pretrained(str(tmp_path))
    with pytest.raises(InputError, match="byte-level BPE"):
        tk.TextEncoder(str(tmp_path))

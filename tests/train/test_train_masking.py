"""Packed sequences: per-document logits equal running each document alone; labels and positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codemill.train.data import IGNORE, block_causal_mask, make_batch, position_ids
from tests.train.packed_corpus import pack_rows

DOCS = [
    "def add(a, b):\n    return a + b\n",
    "import os\nprint(os.getcwd())\n",
    "class Point:\n    x: int = 0\n    y: int = 0\n",
]


@pytest.fixture(scope="module")
def model_and_rows(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    docs = [tok.encode(d, add_special_tokens=False) + [tok.eos_token_id] for d in DOCS]
    width = sum(len(d) for d in docs) + 5  # room for padding at the end
    tokens, segments = pack_rows(docs, width, tok.pad_token_id)
    assert tokens.shape[0] == 1 and (segments == -1).sum() == 5
    return model, docs, tokens, segments


def _alone(model, doc):
    with torch.no_grad():
        return model(input_ids=torch.tensor([doc])).logits[0]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_logits_match_each_document_alone(model_and_rows, attn):
    model, docs, tokens, segments = model_and_rows
    model.config._attn_implementation = attn
    dtype = torch.bool if attn == "sdpa" else torch.float32
    batch = make_batch(tokens, segments, dtype)
    with torch.no_grad():
        packed = model(
            input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=batch.attention_mask
        ).logits[0]
    start = 0
    for doc in docs:
        torch.testing.assert_close(packed[start : start + len(doc)], _alone(model, doc), rtol=1e-4, atol=1e-4)
        start += len(doc)
    model.config._attn_implementation = "sdpa"


def test_plain_causal_attention_leaks_across_documents(model_and_rows):
    """The check above can fail: without the block mask the second document sees the first."""
    model, docs, tokens, segments = model_and_rows
    batch = make_batch(tokens, segments, None)
    with torch.no_grad():
        leaky = model(
            input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=torch.ones_like(batch.input_ids)
        ).logits[0]
    second = slice(len(docs[0]), len(docs[0]) + len(docs[1]))
    assert not torch.allclose(leaky[second], _alone(model, docs[1]), atol=1e-3)


def test_labels_cover_eos_and_fim_but_not_padding_or_document_starts(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    fim = tok.convert_tokens_to_ids(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"])
    psm = [fim[0]] + tok.encode("x = ", add_special_tokens=False) + [fim[1], fim[2]] + [17, tok.eos_token_id]
    plain = tok.encode("y = 2", add_special_tokens=False) + [tok.eos_token_id]
    tokens, segments = pack_rows([psm, plain], len(psm) + len(plain) + 3, tok.pad_token_id)
    batch = make_batch(tokens, segments, torch.bool)
    labels = batch.labels[0].tolist()
    assert labels[0] == IGNORE and labels[len(psm)] == IGNORE  # each document's first token
    assert labels[-3:] == [IGNORE] * 3  # padding
    kept = [t for t in labels if t != IGNORE]
    assert kept == psm[1:] + plain[1:]  # FIM sentinels and both EOS carry loss
    assert batch.targets == len(kept) and batch.tokens == len(psm) + len(plain)


def test_positions_restart_per_segment_and_mask_is_block_causal():
    segments = np.array([[0, 0, 0, 1, 1, 2, -1, -1]], dtype=np.int32)
    assert position_ids(segments).tolist() == [[0, 1, 2, 0, 1, 0, 0, 1]]
    mask = block_causal_mask(segments, torch.bool)[0, 0]
    assert mask[4].tolist() == [False, False, False, True, True, False, False, False]
    assert bool(mask.diagonal().all())  # no empty row, padding included
    additive = block_causal_mask(segments, torch.float32)[0, 0]
    assert additive[4, 3] == 0 and additive[4, 2] == torch.finfo(torch.float32).min

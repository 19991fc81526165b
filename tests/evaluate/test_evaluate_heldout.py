"""Held-out metrics: span choice, document pieces, perplexity against the model's own loss."""

import math
import os

import numpy as np
import pyarrow as pa
import pytest
import torch

from codemill import io
from codemill.evaluate.generation import Generator
from codemill.evaluate.heldout import choose_spans, document_pieces, fim_exact_match, load_documents, perplexity
from codemill.stage import InputError


@pytest.fixture(scope="module")
def gen(tiny_model_dir):
    torch.set_num_threads(1)
    return Generator(tiny_model_dir, device="cpu")


def test_spans_are_seeded_whole_lines(pack_dir):
    docs = load_documents(pack_dir)
    spans = choose_spans(docs, 20, 3, seed=7)
    assert len(spans) == 20 and spans == choose_spans(docs, 20, 3, seed=7)
    assert spans != choose_spans(docs, 20, 3, seed=8)
    texts = {f"{repo}#{i}": text for i, (repo, text) in enumerate(docs)}
    for s in spans:
        assert s.prefix + s.middle + s.suffix == texts[s.task_id.split(":L")[0]]
        assert s.middle.strip() and 1 <= s.lines <= 3
        assert s.prefix == "" or s.prefix.endswith("\n")


def test_fim_exact_match_rows(gen, pack_dir):
    spans = choose_spans(load_documents(pack_dir), 4, 1, seed=0)
    rows = fim_exact_match(gen, spans, max_new_tokens=16, batch_size=4)
    assert [r.task_id for r in rows] == [s.task_id for s in spans]
    for row, span in zip(rows, spans):
        assert row.passed == (row.completion.strip() == span.middle.strip())
        assert row.result == ("exact match" if row.passed else "mismatch")
        assert row.completion.count("\n") <= 1


def test_document_pieces_follow_segments():
    tokens = np.arange(12, dtype=np.uint32).reshape(2, 6)
    segments = np.array([[0, 0, 1, 1, 1, -1], [0, 0, 0, 0, 0, 0]], dtype=np.int32)
    pieces = document_pieces(tokens, segments, limit=2, context=4)
    assert [p.tolist() for p in pieces] == [[0, 1], [2, 3, 4], [6, 7, 8, 9], [10, 11]]
    assert [p.tolist() for p in document_pieces(tokens, segments, limit=1, context=8)] == [[0, 1], [2, 3, 4]]


def test_perplexity_matches_the_models_own_loss(gen, tmp_path):
    ids = gen.encode("def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n")[:40]
    os.makedirs(tmp_path / "val")
    np.save(tmp_path / "val" / "tokens.npy", np.array([ids], dtype=np.uint32))
    np.save(tmp_path / "val" / "segments.npy", np.zeros((1, len(ids)), dtype=np.int32))
    with torch.no_grad():
        loss = gen.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    out = perplexity(gen, str(tmp_path), sequences=4)
    assert out["perplexity"] == pytest.approx(math.exp(loss), rel=1e-4)
    assert out["ppl_tokens"] == len(ids) - 1 and out["ppl_documents"] == 1


def test_perplexity_on_pack_output(gen, pack_dir):
    out = perplexity(gen, pack_dir, sequences=3)
    # An untrained model is close to uniform over its vocabulary.
    assert 0.5 * len(gen.tokenizer) < out["perplexity"] < 2 * len(gen.tokenizer)
    assert out["ppl_sequences"] == 3


def test_missing_or_malformed_pack_inputs(gen, tmp_path):
    with pytest.raises(InputError, match="held-out documents not found"):
        load_documents(str(tmp_path))
    io.write_parquet(pa.table({"repo": ["r"]}), str(tmp_path / "heldout" / "documents.parquet"))
    with pytest.raises(InputError, match="missing columns"):
        load_documents(str(tmp_path))
    with pytest.raises(InputError, match="tokens.npy"):
        perplexity(gen, str(tmp_path), sequences=2)

"""Best-fit decreasing packing (Ding et al. 2024): a document that fits a row is never split,
a longer one is cut into row-sized pieces plus one remainder, rows stay full, and
``split_documents`` reaches stats.json and the report."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest
from pack_fixtures import code_blocks, package_files, small_tokenizer, write_dedup_output

from codemill.pack import PackConfig, run
from codemill.pack.packer import FIM_OVERHEAD, Packer
from codemill.pack.tokenizer import TextEncoder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return TextEncoder(small_tokenizer(str(tmp_path_factory.mktemp("tok"))))


@pytest.fixture(scope="module")
def texts():
    # real documents of every size: code blocks (short) and whole modules (many rows)
    blocks = code_blocks(["requests", "click", "jinja2", "yaml"], 3000)
    modules = [r.content for r in package_files("requests") + package_files("idna")]
    return blocks + modules


def pack(encoder, texts, seq_len=256, fim_rate=0.5, seed=0):
    packer = Packer(encoder, seq_len, fim_rate, 0.5, 8, np.random.default_rng(seed))
    ids = encoder.encode(texts)
    for i, (text, doc_ids) in enumerate(zip(texts, ids)):
        packer.add(i, doc_ids, text.encode("utf-8"))
    return packer.out, [len(x) for x in ids]


def units_by_document(out):
    by_doc = defaultdict(list)
    for u in out.units:
        by_doc[u.document].append(u)
    return by_doc


@pytest.mark.parametrize("fim_rate", [0.0, 0.5])
def test_a_document_that_fits_a_row_is_never_split(encoder, texts, fim_rate):
    out, lengths = pack(encoder, texts, fim_rate=fim_rate)
    by_doc = units_by_document(out)
    assert len(by_doc) == len(texts)
    for doc, n in enumerate(lengths):
        if n + 2 <= 256:  # fits as plain text: never split, FIM drawn or not (issue 17)
            assert len(by_doc[doc]) == 1, f"document {doc} ({n} tokens) was split"
    longer = [doc for doc, n in enumerate(lengths) if n + 2 > 256]
    assert len(longer) > 20 and out.split_documents == len(longer)


def test_a_document_that_fits_only_without_the_fim_tokens_is_packed_plain(encoder, texts):
    lengths = [len(x) for x in encoder.encode(texts)]
    near = [t for t, n in zip(texts, lengths) if 256 - FIM_OVERHEAD < n <= 256 - 2]  # BOS+EOS fit, FIM does not
    assert len(near) >= 3  # real documents a few tokens under the row
    packer = Packer(encoder, 256, 1.0, 0.5, 8, np.random.default_rng(0))  # FIM drawn for every unit
    for i, (text, doc_ids) in enumerate(zip(near, encoder.encode(near))):
        packer.add(i, doc_ids, text.encode("utf-8"))
    out = packer.out
    assert out.split_documents == 0 and len(out.units) == len(near)
    assert {u.format for u in out.units} == {"plain"} and packer.fim_to_plain == len(near)


def test_a_long_document_is_full_rows_then_one_remainder(encoder, texts):
    out, lengths = pack(encoder, texts, fim_rate=0.0)
    assert [(u.sequence, u.start) for u in out.units] == sorted((u.sequence, u.start) for u in out.units)
    tokens, _ = out.tokens_and_segments()
    for doc, units in units_by_document(out).items():
        if len(units) == 1:
            continue
        *rows, rest = units  # in (sequence, start) order, the documents.parquet contract
        assert all(u.start == 0 and u.length >= 256 - 4 for u in rows)  # a row each (a UTF-8 cut may leave 3)
        assert len({u.sequence for u in rows}) == len(rows) and rest.sequence > rows[-1].sequence
        assert sum(u.length - 1 for u in rows) + rest.length - 2 == lengths[doc]  # BOS each, EOS at the end
        assert tokens[rest.sequence, rest.start + rest.length - 1] == encoder.ids["eos"]
        assert all(tokens[u.sequence, u.start + u.length - 1] != encoder.ids["eos"] for u in rows)
        # the row-sized pieces hold nothing else
        assert sum(1 for v in out.units if v.sequence in {u.sequence for u in rows}) == len(rows)


def test_best_fit_fills_rows_tighter_than_concatenation_splits(encoder, texts):
    out, lengths = pack(encoder, texts, fim_rate=0.5)
    _, segments = out.tokens_and_segments()
    assert (segments >= 0).sum() / segments.size >= 0.995
    # concatenation would cut about one document per row boundary; best fit cuts only the long ones
    short = sum(n + 2 + FIM_OVERHEAD <= 256 for n in lengths)
    assert out.split_documents <= len(lengths) - short + 3


def test_best_fit_is_deterministic_and_seeded(encoder, texts):
    a, b, c = (pack(encoder, texts[:1500], seed=s)[0].tokens_and_segments()[0] for s in (3, 3, 4))
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()


def test_stage_reports_split_documents(tmp_path):
    long_module = package_files("requests", max_files=40)
    short = package_files("idna", max_files=8)
    source = write_dedup_output(str(tmp_path / "dedup"), {"requests": long_module, "idna": short})
    out = str(tmp_path / "out")
    stats = run(PackConfig(seq_len=256, vocab_size=700, val_fraction=0.0), source, out)
    docs = pq.read_table(os.path.join(out, "train", "documents.parquet")).to_pylist()
    units = defaultdict(int)
    for r in docs:
        units[r["document"]] += 1
    assert stats["split_documents"] == sum(n > 1 for n in units.values()) > 0
    assert stats["splits"]["train"]["split_documents"] == stats["split_documents"]
    assert json.load(open(os.path.join(out, "stats.json")))["split_documents"] == stats["split_documents"]
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert f"{stats['split_documents']:,} documents longer than a row split" in report
    assert stats["fim_to_plain"] == sum(stats["splits"][s]["fim_to_plain"] for s in ("train", "val"))
    assert f"{stats['fim_to_plain']:,} drawn FIM that fit a row only as plain text were packed plain" in report

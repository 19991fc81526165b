"""The packer: FIM round trip, observed FIM/SPM rates, full rows, whole FIM examples per row,
long documents split (never dropped), same seed same rows."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from pack_fixtures import code_blocks, package_files, small_tokenizer

from codemill.pack.fim import PLAIN, PSM, SPM, split_fim_ids
from codemill.pack.packer import Packer
from codemill.pack.tokenizer import TextEncoder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return TextEncoder(small_tokenizer(str(tmp_path_factory.mktemp("tok"))))


@pytest.fixture(scope="module")
def blocks():
    # more than 10k real documents: blank-line separated blocks of installed packages
    return code_blocks(
        [
            "requests",
            "urllib3",
            "click",
            "jinja2",
            "yaml",
            "idna",
            "attr",
            "charset_normalizer",
            "markdown_it",
            "pygments",
        ],
        12000,
    )


def pack(encoder, texts, seq_len=256, fim_rate=0.5, spm_rate=0.5, seed=0):
    packer = Packer(encoder, seq_len, fim_rate, spm_rate, 8, np.random.default_rng(seed))
    for i, (text, ids) in enumerate(zip(texts, encoder.encode(texts))):
        packer.add(i, ids, text.encode("utf-8"))
    return packer.out


def fim_parts(encoder, unit_ids, fmt):
    ids = encoder.ids
    assert unit_ids[0] == ids["bos"] and unit_ids[-1] == ids["eos"]
    return split_fim_ids(unit_ids[1:-1], fmt, ids["fim_begin"], ids["fim_hole"], ids["fim_end"])


def test_fim_round_trip_and_documents_reassemble_exactly(encoder, blocks):
    texts = blocks[:3000] + ["".join(blocks[3000:3400])]  # plus one document of many rows
    out = pack(encoder, texts)
    tokens, segments = out.tokens_and_segments()
    pieces = defaultdict(list)
    fim_seen = 0
    for unit, arr in zip(out.units, out.arrays):
        ids = arr.tolist()
        assert tokens[unit.sequence, unit.start : unit.start + unit.length].tolist() == ids  # whole inside one row
        if unit.format == PLAIN:
            body = ids[1:-1] if ids[-1] == encoder.ids["eos"] else ids[1:]
            pieces[unit.document].append(encoder.decode(body))
            continue
        prefix, middle, suffix = fim_parts(encoder, ids, unit.format)
        assert encoder.ids["fim_hole"] not in prefix + middle + suffix
        # decode(prefix + middle + suffix) is the piece the example was made from
        pieces[unit.document].append(encoder.decode(prefix + middle + suffix))
        fim_seen += 1
    assert fim_seen > 1000
    assert len(pieces) == len(texts)
    for i, text in enumerate(texts):
        assert "".join(pieces[i]) == text, f"document {i} does not reassemble"
    assert sum(1 for u in out.units if u.document == len(texts) - 1) > 20  # the long one was split
    # segment ids: 0, 1, 2, ... per row, -1 exactly on padding
    for row in range(0, tokens.shape[0], 97):
        seg = segments[row]
        used = seg >= 0
        assert (tokens[row][~used] == encoder.ids["pad"]).all()
        assert np.all(np.diff(seg[used]) >= 0) and seg[used][0] == 0


def test_character_level_cuts_split_tokens_and_multibyte_text(encoder):
    texts = ["naïve = 'héllo wörld 漢字 😀 ünïcödé'\n" * 3] * 300
    out = pack(encoder, texts, seq_len=64, fim_rate=1.0)
    assert {u.format for u in out.units} <= {PSM, SPM}
    for unit, arr in zip(out.units, out.arrays):
        prefix, middle, suffix = fim_parts(encoder, arr.tolist(), unit.format)
        assert "\ufffd" not in encoder.decode(prefix + middle + suffix)


def test_observed_fim_and_spm_rates_match_the_config_on_10k_documents(encoder, blocks):
    for fim_rate, spm_rate in ((0.5, 0.5), (0.9, 0.2)):
        out = pack(encoder, blocks, fim_rate=fim_rate, spm_rate=spm_rate, seed=1)
        formats = Counter(u.format for u in out.units)
        units = sum(formats.values())
        fim = formats[PSM] + formats[SPM]
        assert units >= 10_000
        assert abs(fim / units - fim_rate) <= 0.02
        assert abs(formats[SPM] / fim - spm_rate) <= 0.02


def test_rows_are_full(encoder, blocks):
    out = pack(encoder, blocks[:4000], seq_len=512)
    tokens, segments = out.tokens_and_segments()
    efficiency = (segments >= 0).sum() / segments.size
    assert efficiency >= 0.99
    assert ((segments[:-1] >= 0).sum(axis=1) >= 512 - 8).mean() > 0.9  # padding only where < min_unit was left


def test_no_fim_and_all_fim(encoder, blocks):
    assert {u.format for u in pack(encoder, blocks[:500], fim_rate=0.0).units} == {PLAIN}
    packer = Packer(encoder, 256, 1.0, 0.5, 8, np.random.default_rng(0))
    for i, (text, ids) in enumerate(zip(blocks[:500], encoder.encode(blocks[:500]))):
        packer.add(i, ids, text.encode("utf-8"))
    # all FIM, but for the units that fit a row only as plain text (a FIM unit would split them)
    plain = [u for u in packer.out.units if u.format == PLAIN]
    assert len(plain) == packer.fim_to_plain < len(packer.out.units) / 20
    assert all(256 - 12 < u.length <= 256 for u in plain)  # within the FIM sentinels (and a re-encoded cut) of a row


def test_same_seed_same_rows_and_another_seed_other_rows(encoder):
    texts = [r.content for r in package_files("idna")]
    a, b, c = (pack(encoder, texts, seed=s).tokens_and_segments()[0] for s in (5, 5, 6))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()

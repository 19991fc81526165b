"""The whole stage on a real corpus: the output contract, the held-out split, sentinel text,
skipped records, byte-identical reruns, resumption, and `codemill inspect`."""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest
from pack_fixtures import package_files, write_dedup_output

from codemill import stage
from codemill.pack import PackConfig, finish, iter_units, pack_shard, run, train_tokenizer
from codemill.pack.corpus import input_urls, read_repos
from codemill.pack.documents import BuildStats, repo_documents
from codemill.pack.fim import FIM_BEGIN, FIM_END, FIM_HOLE
from codemill.records import FileRecord
from codemill.stage import InputError

PACKAGES = ["requests", "idna", "certifi", "markupsafe", "urllib3", "charset_normalizer"]
SENTINELS = (
    f'"""Tokens: {FIM_BEGIN} {FIM_HOLE} {FIM_END} <｜end▁of▁sentence｜>"""\n'
    f'PROMPT = "{FIM_BEGIN}x{FIM_HOLE}y{FIM_END}"\n'
)
CONFIG = dict(seq_len=128, vocab_size=700, val_fraction=0.2)


def corpus() -> dict[str, list[FileRecord]]:
    repos = {p: package_files(p, max_files=25) for p in PACKAGES}
    repos["sentinels"] = [
        FileRecord(repo="acme/fim-docs", path="fim/prompts.py", content=SENTINELS, language="Python"),
        FileRecord(
            repo="acme/fim-docs", path="fim/__init__.py", content="from .prompts import PROMPT\n", language="Python"
        ),
        FileRecord(repo="acme/fim-docs", path="fim/empty.py", content="   \n", language="Python"),  # skipped
        FileRecord(repo="acme/fim-docs", path="fim/prompts.py", content="# a second copy\n", language="Python"),
    ]
    return repos


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack")
    source = write_dedup_output(str(root / "dedup"), corpus())
    output = str(root / "out")
    stats = run(PackConfig(**CONFIG), source, output)
    return source, output, stats


def _digests(folder: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(dirpath, n)
            if "_markers" not in path:
                out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_output_follows_the_contract(packed):
    _, out, stats = packed
    meta = json.load(open(os.path.join(out, "meta.json")))
    assert {
        "seq_len",
        "vocab_size",
        "bos",
        "eos",
        "pad",
        "fim_begin",
        "fim_hole",
        "fim_end",
        "fim_rate",
        "spm_rate",
    } <= set(meta)
    for split in ("train", "val"):
        tokens = np.load(os.path.join(out, split, "tokens.npy"), mmap_mode="r")
        segments = np.load(os.path.join(out, split, "segments.npy"), mmap_mode="r")
        assert tokens.dtype == np.uint32 and segments.dtype == np.int32
        assert tokens.shape == segments.shape and tokens.shape[1] == 128 and tokens.shape[0] > 0
        assert tokens.max() < meta["vocab_size"]
        assert (tokens[segments < 0] == meta["pad"]).all() and (tokens[segments >= 0] != meta["pad"]).all()
        docs = pq.read_table(os.path.join(out, split, "documents.parquet"))
        assert {"sequence", "start", "length", "repo", "language", "format"} <= set(docs.column_names)
        rows = docs.to_pylist()
        assert sum(r["length"] for r in rows) == int((segments >= 0).sum())
        for r in rows[:200]:  # every unit starts with BOS in its own segment
            assert tokens[r["sequence"], r["start"]] == meta["bos"]
            assert len(set(segments[r["sequence"], r["start"] : r["start"] + r["length"]].tolist())) == 1
    for key in (
        "documents",
        "sequences",
        "tokens",
        "pad_tokens",
        "packing_efficiency",
        "fim_rate_observed",
        "spm_share_observed",
        "languages",
    ):
        assert key in stats
    assert stats["skipped"] == {"duplicate_path": 1, "empty_content": 1}
    assert {"python", "c"} <= set(stats["languages"])
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "### psm" in report and "### spm" in report and "### plain" in report
    assert not os.path.exists(os.path.join(out, "_work"))


def test_validation_holds_out_whole_repositories(packed):
    _, out, _ = packed
    train = set(pq.read_table(os.path.join(out, "train", "documents.parquet")).column("repo").to_pylist())
    val = set(pq.read_table(os.path.join(out, "val", "documents.parquet")).column("repo").to_pylist())
    heldout = pq.read_table(os.path.join(out, "heldout", "documents.parquet"))
    assert val and not (train & val)
    assert (
        set(heldout.column("repo").to_pylist())
        == val
        == set(json.load(open(os.path.join(out, "meta.json")))["heldout_repos"])
    )
    assert len(train | val) == len(PACKAGES) + 1


def test_units_decode_back_to_the_documents(packed):
    source, out, _ = packed
    records = read_repos(input_urls(source), sorted({r.repo for rs in corpus().values() for r in rs}), defaultdict(int))
    texts = {}
    for repo, recs in records.items():
        for doc in repo_documents(repo, recs, PackConfig(**CONFIG).seed, BuildStats()):
            texts[(doc.repo, doc.language)] = doc.text
    for split in ("train", "val"):
        pieces = defaultdict(list)
        keys = {}
        for unit in iter_units(out, split):
            pieces[unit["document"]].append(unit["original"])
            keys[unit["document"]] = (unit["repo"], unit["language"])
        for doc, parts in pieces.items():  # FIM examples included: prefix + middle + suffix in order
            assert "".join(parts) == texts[keys[doc]]
        if split == "val":  # heldout row i is val document i, before FIM
            heldout = pq.read_table(os.path.join(out, "heldout", "documents.parquet")).to_pylist()
            assert len(heldout) == len(pieces)
            assert all(heldout[doc]["text"] == "".join(parts) for doc, parts in pieces.items())


def test_sentinel_text_in_a_source_file_stays_text(packed):
    _, out, _ = packed
    meta = json.load(open(os.path.join(out, "meta.json")))
    split = "val" if "acme/fim-docs" in meta["heldout_repos"] else "train"
    tokens = np.load(os.path.join(out, split, "tokens.npy"))
    sentinels = {meta["fim_begin"], meta["fim_hole"], meta["fim_end"]}
    units = [u for u in iter_units(out, split) if u["repo"] == "acme/fim-docs"]
    assert "".join(u["original"] for u in units).count(FIM_BEGIN) == 2  # the file's own text survives
    for u in units:
        ids = tokens[u["sequence"], u["start"] : u["start"] + u["length"]].tolist()
        expected = 0 if u["format"] == "plain" else 1  # only the layout's own sentinels
        assert all(ids.count(s) == expected for s in sentinels)
        assert ids.count(meta["eos"]) <= 1 and ids.count(meta["bos"]) == 1


def test_same_seed_same_bytes_across_shards_and_a_retry_does_nothing(packed, tmp_path):
    source, _, _ = packed
    outputs = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        config = PackConfig(**{**CONFIG, "val_fraction": 0.3}, seed=11)  # a held-out repository per shard
        train_tokenizer(config, source, out)
        for rank in (1, 0):
            pack_shard(config, source, out, rank, 2)
        first = dict(stage.read_shard_stats(out, "pack", 2)[0])
        assert pack_shard(config, source, out, 0, 2) == first  # a retried shard finds its marker
        finish(out, 2)
        outputs.append(_digests(out))
    # document numbers run on across shards: heldout row i is still val document i
    assert [st["repos"]["val"] for st in stage.read_shard_stats(out, "pack", 2)] == [1, 1]
    heldout = pq.read_table(os.path.join(out, "heldout", "documents.parquet")).column("text").to_pylist()
    val = defaultdict(str)
    for unit in iter_units(out, "val"):
        val[unit["document"]] += unit["original"]
    assert [val[i] for i in range(len(val))] == heldout
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 12
    other = str(tmp_path / "c")
    run(PackConfig(**CONFIG, seed=12), source, other)
    assert _digests(other)["train/tokens.npy"] != outputs[0]["train/tokens.npy"]


def test_a_shard_refuses_another_config_than_the_plan(packed, tmp_path):
    source, _, _ = packed
    out = str(tmp_path / "x")
    train_tokenizer(PackConfig(**CONFIG), source, out)
    with pytest.raises(InputError, match="seq_len"):
        pack_shard(PackConfig(**{**CONFIG, "seq_len": 256}), source, out)


def test_bad_inputs_name_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="no Parquet shards"):
        run(PackConfig(**CONFIG), str(tmp_path / "nothing"), str(tmp_path / "out"))
    import pyarrow as pa

    os.makedirs(tmp_path / "bad" / "files")
    pq.write_table(pa.table({"repo": ["r"], "text": ["x"]}), str(tmp_path / "bad" / "files" / "a.parquet"))
    with pytest.raises(InputError, match="missing column"):
        run(PackConfig(**CONFIG), str(tmp_path / "bad"), str(tmp_path / "out"))
    with pytest.raises(InputError, match="fim_rate"):
        PackConfig(fim_rate=1.5).ensure_valid()

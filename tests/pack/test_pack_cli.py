"""`codemill pack` / `codemill inspect` as a user runs them, locally and against S3 (moto)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from pack_fixtures import package_files, write_dedup_output

from codemill import cli, io

FLAGS = [
    "--seq-len",
    "96",
    "--vocab-size",
    "600",
    "--fim-rate",
    "0.7",
    "--spm-rate",
    "0.3",
    "--val-fraction",
    "0.34",
    "--seed",
    "4",
    "--no-tracking",
]


@pytest.fixture
def codemill(monkeypatch):
    # the shared command list registers pack once the stage is wired in; until then, here
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["codemill.pack.cli"])
    return cli.main


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    repos = {p: package_files(p, max_files=12) for p in ("idna", "certifi", "requests")}
    return write_dedup_output(str(tmp_path_factory.mktemp("dedup")), repos)


def test_pack_then_inspect(codemill, source, tmp_path, capsys):
    out = str(tmp_path / "pack")
    assert codemill(["pack", "--input", source, "--output", out, *FLAGS]) == 0
    meta = json.load(open(os.path.join(out, "meta.json")))
    assert (meta["seq_len"], meta["fim_rate"], meta["spm_rate"], meta["seed"]) == (96, 0.7, 0.3, 4)
    assert len(meta["heldout_repos"]) == 1  # a third of three repositories
    capsys.readouterr()
    assert codemill(["inspect", out, "--limit", "3", "--json", "--format", "spm"]) == 0
    units = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(units) == 3 and all(u["format"] == "spm" for u in units)
    assert all(u["text"].startswith("<｜begin▁of▁sentence｜><｜fim▁begin｜><｜fim▁hole｜>") for u in units)
    assert codemill(["inspect", out, "--limit", "1", "--split", "val"]) == 0
    assert capsys.readouterr().out.startswith("=== pypi/")


def test_reusing_the_tokenizer_gives_the_same_tokens(codemill, source, tmp_path):
    first, second = str(tmp_path / "one"), str(tmp_path / "two")
    assert codemill(["pack", "--input", source, "--output", first, *FLAGS]) == 0
    assert (
        codemill(
            ["pack", "--input", source, "--output", second, "--tokenizer", os.path.join(first, "tokenizer"), *FLAGS]
        )
        == 0
    )
    a, b = (np.load(os.path.join(d, "train", "tokens.npy")) for d in (first, second))
    assert a.tobytes() == b.tobytes()


def test_a_missing_input_is_one_line_and_status_2(codemill, tmp_path, capsys):
    assert codemill(["pack", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o"), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "none/files/*.parquet" in err and "\n" not in err


def test_pack_and_inspect_on_s3(codemill, source, capsys, monkeypatch):
    moto = pytest.importorskip("moto")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with moto.mock_aws():
        io.reset_s3_client()
        io.s3_client().create_bucket(Bucket="mill")
        for name in sorted(os.listdir(os.path.join(source, "files"))):
            io.write_bytes(f"s3://mill/dedup/files/{name}", io.read_bytes(os.path.join(source, "files", name)))
        assert codemill(["pack", "--input", "s3://mill/dedup", "--output", "s3://mill/pack", *FLAGS]) == 0
        keys = {u.removeprefix("s3://mill/pack/") for u in io.list_files("s3://mill/pack")}
        assert {
            "meta.json",
            "stats.json",
            "report.md",
            "train/tokens.npy",
            "val/segments.npy",
            "heldout/documents.parquet",
            "tokenizer/tokenizer.json",
        } <= keys
        assert not any(k.startswith("_work/") for k in keys)
        capsys.readouterr()
        assert codemill(["inspect", "s3://mill/pack", "--limit", "2", "--json"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 2
    io.reset_s3_client()


def _tree_bytes(root: str) -> dict[str, bytes]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if "_markers" not in folder:
                out[os.path.relpath(os.path.join(folder, name), root)] = open(os.path.join(folder, name), "rb").read()
    return out


@pytest.mark.parametrize("marker", ["pack.shard-00000-of-00001.done", "pack-tokenizer.shard-00000-of-00001.done"])
def test_a_finished_pack_with_an_unreadable_marker_is_left_as_it_is(codemill, source, tmp_path, capsys, marker):
    out = str(tmp_path / "pack")
    assert codemill(["pack", "--input", source, "--output", out, *FLAGS]) == 0
    before = _tree_bytes(out)
    path = os.path.join(out, "_markers", marker)
    assert os.path.exists(path)
    open(path, "w").close()  # `: > marker`: a kill between create and write
    capsys.readouterr()
    assert codemill(["pack", "--input", source, "--output", out, *FLAGS]) == 0
    said = capsys.readouterr().out
    assert "is a finished pack (meta.json, stats.json)" in said and "nothing to do" in said
    assert _tree_bytes(out) == before  # no byte of the output changed
    assert not os.path.exists(os.path.join(out, "_work"))


def test_a_finished_pack_refuses_a_rerun_with_other_values(codemill, source, tmp_path, capsys):
    out = str(tmp_path / "pack")
    assert codemill(["pack", "--input", source, "--output", out, *FLAGS]) == 0
    for step in ("pack-tokenizer", "pack"):  # both lost: only the finished output can say what it was made with
        open(os.path.join(out, "_markers", f"{step}.shard-00000-of-00001.done"), "w").close()
    other = [f if f != "96" else "128" for f in FLAGS]
    assert codemill(["pack", "--input", source, "--output", out, *other]) == 2
    assert "a finished pack made with other values of seq_len" in capsys.readouterr().err

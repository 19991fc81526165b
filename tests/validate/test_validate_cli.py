"""``codemill validate`` through codemill.cli.main: flags, shards + --finish, one-line errors."""

import dataclasses
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from validate_corpus import build_jsonl

from codemill import cli, stage
from codemill.validate import ValidateConfig


def test_help_documents_every_config_field(capsys):
    with pytest.raises(SystemExit):
        cli.main(["validate", "--help"])
    text = capsys.readouterr().out
    squeezed = "".join(text.split())  # argparse wraps lines, also at hyphens
    for f in dataclasses.fields(ValidateConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name
        if f.name != "seed":  # --seed is one of the shared shard flags, with their help text
            assert "".join(f.metadata["help"].split()) in squeezed, f.name
    for flag in ("--source", "--output", "--finish", "--rank", "--world-size", "--no-tracking"):
        assert flag in text


def test_single_process_run_writes_stats_and_report(tmp_path, capsys):
    source = str(tmp_path / "a.jsonl")
    expected = build_jsonl(source)
    out = str(tmp_path / "out")
    assert (
        cli.main(
            [
                "validate",
                "--source",
                source,
                "--output",
                out,
                "--no-tracking",
                "--max-file-bytes",
                "1000",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    stats = stage.read_stats(out)
    assert stats["input_records"] == len(expected) and stats["invariant_ok"]
    assert stats["config"]["max_file_bytes"] == 1000 and stats["config"]["seed"] == 3
    assert stats["by_reason"]["too_large"] == 1  # bisect.py is over 1000 bytes
    assert json.loads(capsys.readouterr().out.splitlines()[-2])["invariant_ok"] is True


def test_shards_then_finish(tmp_path):
    source = str(tmp_path / "a.jsonl")
    build_jsonl(source)
    out = str(tmp_path / "out")
    base = ["validate", "--source", source, "--output", out, "--no-tracking", "--world-size", "2"]
    assert cli.main(base + ["--rank", "0"]) == 0
    assert not (tmp_path / "out" / "stats.json").exists()  # a shard alone does not merge
    assert cli.main(base + ["--rank", "1"]) == 0
    assert cli.main(["validate", "--output", out, "--no-tracking", "--world-size", "2", "--finish"]) == 0
    assert stage.read_stats(out)["shards"] == 2


def test_missing_columns_is_one_line_naming_file_and_columns(tmp_path, capsys):
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"repo_name": ["r"], "text": ["x = 1\n"]}), path)
    code = cli.main(["validate", "--source", str(path), "--output", str(tmp_path / "out"), "--no-tracking"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == (
        f"error: {path}: missing required column(s) ['path', 'content']; expected "
        "['repo_name', 'path', 'content'] (optional ['language', 'license', 'stars']), "
        "found ['repo_name', 'text']"
    )


def test_source_is_required_without_finish(tmp_path, capsys):
    assert cli.main(["validate", "--output", str(tmp_path), "--no-tracking"]) == 2
    assert "--source is required" in capsys.readouterr().err


def test_bad_shard_flags(tmp_path, capsys):
    code = cli.main(
        [
            "validate",
            "--source",
            "site-packages",
            "--output",
            str(tmp_path),
            "--no-tracking",
            "--rank",
            "2",
            "--world-size",
            "2",
        ]
    )
    assert code == 2 and "invalid shard: rank=2 world_size=2" in capsys.readouterr().err

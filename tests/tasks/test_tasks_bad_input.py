"""Bad input: a corpus with no Python is zero tasks (said in the report), an unreadable or
wrong input is a one-line error naming it (exit status 2), bad settings name the field."""

from __future__ import annotations

import json
import os

import pytest
from tasks_corpus import write_corpus

from codemill.cli import main


def test_a_corpus_without_python_gives_zero_tasks_and_says_so(tmp_path, capsys):
    corpus = write_corpus(
        str(tmp_path / "in"),
        {"docs/site": {"README.md": "# Docs\n\nOnly prose here.\n", "guide.md": "## Guide\n\nMore prose.\n"}},
    )
    out = tmp_path / "out"
    assert main(["tasks", "--input", corpus, "--output", str(out), "--no-tracking"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["candidates"], stats["tasks"], stats["python_files"], stats["input_rows"]) == (0, 0, 0, 2)
    assert stats["invariant_ok"]
    assert "The input holds no Python files" in (out / "report.md").read_text()
    assert os.path.exists(out / "tasks" / "train.parquet")


def test_an_unreadable_input_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "in" / "files" / "shard-00000-of-00001.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"this is not parquet at all")
    assert main(["tasks", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(bad) in err[0]


def test_a_missing_input_and_wrong_columns_are_named(tmp_path, capsys):
    assert main(["tasks", "--input", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o1"), "--no-tracking"]) == 2
    assert "nowhere" in capsys.readouterr().err
    import pyarrow as pa

    from codemill import io

    url = str(tmp_path / "cols" / "files" / "a.parquet")
    io.write_parquet(pa.table({"repo": ["r"], "text": ["x"]}), url)
    assert main(["tasks", "--input", str(tmp_path / "cols"), "--output", str(tmp_path / "o2"), "--no-tracking"]) == 2
    err = capsys.readouterr().err
    assert url in err and "path, content, language" in err


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--kinds", "generate,guess"], "kinds"),
        (["--timeout", "0"], "timeout"),
        (["--runs", "1"], "runs"),
        (["--heldout-fraction", "1.5"], "heldout_fraction"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, capsys, flags, field):
    assert main(["tasks", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--no-tracking", *flags]) == 2
    assert field in capsys.readouterr().err


def test_finish_refuses_settings_other_than_the_shards(tmp_path, capsys):
    corpus = write_corpus(str(tmp_path / "in"), {"a/b": {"m.py": "def f(x):\n    '''>>> f(1)'''\n    return x\n"}})
    out = str(tmp_path / "out")
    assert main(["tasks", "--step", "shard", "--input", corpus, "--output", out, "--no-tracking"]) == 0
    assert main(["tasks", "--step", "finish", "--output", out, "--seed", "3", "--no-tracking"]) == 2
    assert "seed: 0 -> 3" in capsys.readouterr().err
    assert main(["tasks", "--step", "finish", "--output", out, "--no-tracking"]) == 0
    assert json.loads(open(os.path.join(out, "stats.json")).read())["tasks"] == 3


def test_finish_alone_can_make_other_kinds(tmp_path):
    corpus = write_corpus(str(tmp_path / "in"), {"a/b": {"m.py": "def f(x):\n    '''>>> f(1)'''\n    return x\n"}})
    out = str(tmp_path / "out")
    assert main(["tasks", "--input", corpus, "--output", out, "--no-tracking"]) == 0
    assert main(["tasks", "--step", "finish", "--output", out, "--kinds", "output", "--no-tracking"]) == 0
    stats = json.loads(open(os.path.join(out, "stats.json")).read())
    assert stats["by_kind"] == {"output": 1} and stats["config"]["kinds"] == ["output"]

"""Bad input is one line naming it (exit 2); an answer cut off at max_tokens says so in its quarantine row."""

from __future__ import annotations

import pytest

from codemill import io
from codemill.cli import main
from tests.synth.conftest import write_corpus
from tests.synth.scripted import Reply, ScriptedTeacher


@pytest.mark.parametrize(
    "args, words",
    [
        (["--mode", "oss-instruct"], "needs --input"),
        (["--mode", "distill"], "needs --tasks DIR and/or --problems FILE"),
        (["--mode", "distill", "--tasks", "/nonexistent/tasks"], "/nonexistent/tasks"),
        (
            ["--mode", "distill", "--problems", "/nonexistent/p.jsonl", "--mutual-verification", "3"],
            "/nonexistent/p.jsonl",
        ),
        (["--mode", "oss-instruct", "--input", "/nonexistent/corpus"], "/nonexistent/corpus"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, args, words):
    rc = main(
        ["synth", *args, "--output", str(tmp_path / "out"), "--teacher-url", "http://127.0.0.1:9", "--no-tracking"]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and words in errors[0]


def test_a_truncated_answer_is_quarantined_with_the_reason(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", [("a.py", "python", "x = 1\n")])
    cut = Reply(content="[Problem]\nWrite f.\n\n[Solution]\n```python\ndef f(x):\n    return", finish_reason="length")
    out = str(tmp_path / "out")
    with ScriptedTeacher(lambda *a: cut) as teacher:
        assert (
            main(
                [
                    "synth",
                    "--input",
                    corpus,
                    "--output",
                    out,
                    "--teacher-url",
                    teacher.url,
                    "--max-samples",
                    "1",
                    "--no-tracking",
                ]
            )
            == 0
        )
    row = io.read_parquet(f"{out}/quarantine/shard-00000-of-00001.parquet").to_pylist()[0]
    assert row["reason"] == "unparseable" and "finish_reason length" in row["detail"] and row["raw"] == cut.content
    assert not io.exists(f"{out}/data/shard-00000-of-00001.parquet")
    assert io.read_json(f"{out}/stats.json")["files"] == ["quarantine/shard-00000-of-00001.parquet"]

"""A teacher that cannot answer ends the stage with one line naming its URL (exit 2); a missing key variable too."""

from __future__ import annotations

import socket

import pytest

from codemill.cli import main
from tests.synth.scripted import Reply, ScriptedTeacher

QUICK = ["--max-samples", "4", "--request-timeout-s", "2", "--max-retries", "1", "--backoff-s", "0.01", "--no-tracking"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_401_is_one_line_naming_the_url(oss_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", "wrong-key")
    with ScriptedTeacher(lambda *a: "never", api_key="right-key") as teacher:
        rc = main(
            [
                "synth",
                "--input",
                oss_corpus,
                "--output",
                str(tmp_path / "out"),
                "--teacher-url",
                teacher.url,
                "--teacher-api-key-env",
                "SYNTH_TEST_KEY",
                *QUICK,
            ]
        )
    line = _error_line(capsys)
    assert rc == 2 and teacher.url in line and "401" in line


def test_unreachable_teacher_is_one_line_naming_the_url(oss_corpus, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    rc = main(["synth", "--input", oss_corpus, "--output", str(tmp_path / "out"), "--teacher-url", url, *QUICK])
    line = _error_line(capsys)
    assert rc == 2 and url in line and "cannot connect" in line


def test_a_teacher_that_times_out_on_every_request_is_one_line(oss_corpus, tmp_path, capsys):
    with ScriptedTeacher(lambda *a: Reply(content="late", delay=1.0)) as teacher:
        rc = main(
            [
                "synth",
                "--input",
                oss_corpus,
                "--output",
                str(tmp_path / "out"),
                "--teacher-url",
                teacher.url,
                *QUICK,
                "--request-timeout-s",
                "0.3",
            ]
        )
        assert teacher.posts <= 4 * 2  # bounded: at most every request with its one retry
    line = _error_line(capsys)
    assert rc == 2 and teacher.url in line and "timed out" in line


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_key_variable_is_named(oss_corpus, tmp_path, capsys, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SYNTH_MISSING_KEY", raising=False)
    else:
        monkeypatch.setenv("SYNTH_MISSING_KEY", value)
    rc = main(
        [
            "synth",
            "--input",
            oss_corpus,
            "--output",
            str(tmp_path / "out"),
            "--teacher-url",
            "http://127.0.0.1:9",
            "--teacher-api-key-env",
            "SYNTH_MISSING_KEY",
            *QUICK,
        ]
    )
    assert rc == 2 and "SYNTH_MISSING_KEY" in _error_line(capsys)


def test_a_teacher_that_answers_nothing_is_one_line_and_a_rerun_asks_again_only_with_retry_failed(
    oss_corpus, tmp_path, capsys
):
    args = ["synth", "--input", oss_corpus, "--output", str(tmp_path / "out"), *QUICK]
    with ScriptedTeacher(lambda *a: Reply(status=404, content="model 'x' does not exist")) as teacher:
        assert main([*args, "--teacher-url", teacher.url]) == 2
        assert "none of the 4 requests was answered" in _error_line(capsys) and teacher.posts == 4
        assert main([*args, "--teacher-url", teacher.url]) == 2 and teacher.posts == 4  # cached outcomes
        capsys.readouterr()
        assert main([*args, "--teacher-url", teacher.url, "--retry-failed"]) == 2 and teacher.posts == 8

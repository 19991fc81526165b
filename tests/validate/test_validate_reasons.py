"""Every reject reason, from real malformed inputs, and the count invariant."""

from collections import Counter

import pytest
from validate_corpus import EXPECTED, SECRETS_PY, build_folder_corpus, build_jsonl, outside_file, rows, run_all

from codemill import stage
from codemill.validate import ValidateConfig


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("reasons")
    source = build_folder_corpus(str(base / "repos"))
    stats = run_all(source, str(base / "out"))
    return source, str(base / "out"), stats


def test_every_file_gets_its_expected_outcome(folder_run):
    _, out, _ = folder_run
    kept = {f"{r['repo']}/{r['path']}" for r in rows(out, "files")}
    held = {f"{r['repo']}/{r['path']}": r["reason"] for r in rows(out, "quarantine")}
    assert kept == {p for p, reason in EXPECTED.items() if reason is None}
    assert held == {p: reason for p, reason in EXPECTED.items() if reason is not None}


def test_details_name_the_measured_value_and_threshold(folder_run):
    _, out, _ = folder_run
    detail = {r["path"]: r["detail"] for r in rows(out, "quarantine")}
    assert "> max_file_bytes=1000000" in detail["big.py"]
    assert "byte 5" in detail["latin1.py"] and "0xe9" in detail["latin1.py"]
    assert "mean line length" in detail["wide.py"] and "> 100" in detail["wide.py"]
    assert "> 1000" in detail["oneline.py"]
    assert detail["solution.py"].startswith("HumanEval/0:")
    assert "'automatically generated'" in detail["keyword.py"]
    assert "'notes.xyz'" in detail["notes.xyz"]


def test_links_are_records_never_followed_out_of_the_repository(folder_run):
    source, out, stats = folder_run
    held = {r["path"]: r for r in rows(out, "quarantine")}
    dangling = held["dangling.py"]
    assert dangling["reason"] == "unreadable"
    assert dangling["detail"] == f"{source}/beta/dangling.py: cannot stat: No such file or directory"
    outside = held["outside.py"]
    assert outside["reason"] == "symlink_outside_repo" and outside["raw"] is None
    assert f"{source}/beta/outside.py is a symbolic link to {outside_file(source)}" in outside["detail"]
    everything = [r for folder in ("files", "quarantine") for r in rows(out, folder)]
    assert not any("SECRET_ELSEWHERE" in (r.get("content") or r.get("raw") or "") for r in everything)
    assert stats["examples"]["unreadable"][0]["source"] == f"{source}/beta/dangling.py"


def test_quarantine_keeps_the_record_as_read(folder_run):
    source, out, _ = folder_run
    held = {r["path"]: r for r in rows(out, "quarantine")}
    assert held["latin1.py"]["raw"].startswith("# caf\ufffd au lait")
    assert held["solution.py"]["source"] == f"{source}/beta/solution.py"
    assert held["solution.py"]["language"] == "python" and held["solution.py"]["repo"] == "beta"
    assert len(held["big.py"]["raw"]) == 64 * 1024  # truncated to records.RAW_LIMIT


def test_count_invariant_and_stats(folder_run):
    _, out, stats = folder_run
    assert stats == stage.read_stats(out)
    expected = Counter(r for r in EXPECTED.values() if r)
    assert stats["by_reason"] == dict(sorted(expected.items()))
    assert stats["input_records"] == len(EXPECTED) == stats["kept"] + stats["quarantined"]
    assert stats["invariant_ok"] is True
    assert stats["rows_written"] == {"files": stats["kept"], "quarantine": stats["quarantined"]}
    # files that are not records are counted apart and never reach the invariant
    assert stats["skipped_files"] == {"binary_name": 2, "skipped_dir": 2}
    assert stats["languages"]["python"] == 6 and stats["languages"]["xslt"] == 1


def test_report_explains_the_run(folder_run):
    _, out, stats = folder_run
    report = open(f"{out}/report.md", encoding="utf-8").read()
    assert f"holds ({stats['input_records']} = {stats['kept']} + {stats['quarantined']}" in report
    for reason in stats["by_reason"]:
        assert f"`{reason}`" in report


def test_secrets_are_redacted_in_kept_files(folder_run):
    _, out, stats = folder_run
    keys = next(r for r in rows(out, "files") if r["path"] == "keys.py")
    assert "AKIA" not in keys["content"] and "ghp_" not in keys["content"] and "jane.doe" not in keys["content"]
    assert "AWS_KEY = '<KEY>'" in keys["content"] and "<<EMAIL>>" in keys["content"]
    assert "@property" in keys["content"]  # a decorator is not an e-mail address
    assert keys["redactions"] == 3 and keys["size"] == len(keys["content"].encode())
    assert keys["size"] < len(SECRETS_PY)
    # the real stdlib files carry their authors' addresses ("Greg Ward <gward@python.net>")
    kept = rows(out, "files")
    textwrap = next(r for r in kept if r["path"] == "textwrap.py")["content"]
    assert "gward@" not in textwrap and "Greg Ward <<EMAIL>>" in textwrap
    assert stats["redactions"]["aws_access_key"] == 1 and stats["redactions"]["github_token"] == 1
    assert sum(stats["redactions"].values()) == sum(r["redactions"] for r in kept)
    assert stats["files_redacted"] == sum(1 for r in kept if r["redactions"])


def test_jsonl_record_problems(tmp_path):
    path = str(tmp_path / "stack" / "part-0.jsonl")
    expected = build_jsonl(path)
    stats = run_all(path, str(tmp_path / "out"))
    held = {int(r["source"].rsplit(":", 1)[1]): r for r in rows(str(tmp_path / "out"), "quarantine")}
    assert {line: r["reason"] for line, r in held.items()} == {k: v for k, v in expected.items() if v}
    assert held[2]["detail"].startswith(f"{path}:2: ") and held[2]["raw"].startswith('{"repo_name": "org/broken"')
    assert "content is missing" in held[3]["detail"]
    assert "repo_name is empty" in held[10]["detail"]
    assert "COBOL" in held[7]["detail"]
    kept = rows(str(tmp_path / "out"), "files")
    assert [(r["repo"], r["path"], r["language"], r["license"], r["stars"]) for r in kept] == [
        ("org/good", "bisect.py", "python", "MIT,PSF", 12)
    ]
    assert kept[0]["source"] == f"{path}:1"
    assert stats["input_records"] == len(expected) and stats["invariant_ok"]


def test_unwanted_language(tmp_path):
    source = build_folder_corpus(str(tmp_path / "repos"))
    config = ValidateConfig(languages=["Python"], include_repos=["alpha"])
    stats = run_all(source, str(tmp_path / "out"), config)
    held = {r["path"]: r for r in rows(str(tmp_path / "out"), "quarantine")}
    assert {p for p, r in held.items() if r["reason"] == "unwanted_language"} == {
        "README.md",
        "style.xsl",
        "settings.yaml",
    }
    assert "markdown is not in languages=['python']" in held["README.md"]["detail"]
    assert set(stats["languages"]) == {"python"}

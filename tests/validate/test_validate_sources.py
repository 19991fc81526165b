"""Sources: installed distributions, folders, JSONL/Parquet (local and S3), and their errors."""

import gzip
import importlib.metadata
import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from validate_corpus import STDLIB, build_folder_corpus, rows, run_all

from codemill import io
from codemill.stage import InputError
from codemill.validate import ValidateConfig
from codemill.validate.repos import select, site_packages_repos


def test_site_packages_reads_real_distributions(tmp_path):
    config = ValidateConfig(include_repos=["blinker", "six"])
    stats = run_all("site-packages", str(tmp_path / "out"), config)
    kept = rows(str(tmp_path / "out"), "files")
    repos = {r["repo"] for r in kept}
    assert repos == {f"blinker=={importlib.metadata.version('blinker')}", f"six=={importlib.metadata.version('six')}"}
    blinker = next(r for r in kept if r["path"] == "blinker/base.py")
    installed = importlib.metadata.distribution("blinker").locate_file("blinker/base.py")
    assert blinker["content"] == open(installed, encoding="utf-8").read()
    assert blinker["source"] == str(installed) and blinker["license"]
    assert stats["selection"]["picked"] == sorted(repos)
    assert stats["skipped_files"]["packaging_metadata"] > 0  # .dist-info files are metadata, not source


def test_site_packages_selection_is_sorted_capped_and_limited():
    repos = site_packages_repos(ValidateConfig())
    assert len(repos) > 20
    ids = {r.id for r in repos}
    assert f"numpy=={importlib.metadata.version('numpy')}" in ids
    picked, selection = select(repos, ValidateConfig(max_repos=5, max_repo_bytes=2_000_000), "site-packages")
    fitting = sorted(r.id for r in repos if r.size <= 2_000_000)
    assert [r.id for r in picked] == fitting[:5]
    assert any(i.startswith("numpy==") for i in selection["repos_over_byte_cap"])  # ~10 MB of text
    none, _ = select(repos, ValidateConfig(max_repo_bytes=0, exclude_repos=["n*"]), "site-packages")
    assert not any(r.id.startswith("n") for r in none)


def test_folder_source_errors(tmp_path):
    with pytest.raises(InputError, match=r"nowhere: no such folder"):
        run_all(str(tmp_path / "nowhere"), str(tmp_path / "out"))
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "loose.py").write_text("x = 1\n")
    with pytest.raises(InputError, match=r"flat: no repository subfolders"):
        run_all(str(tmp_path / "flat"), str(tmp_path / "out"))
    (tmp_path / "flat" / "repo").mkdir()
    (tmp_path / "flat" / "repo" / "a.py").write_text("x = 1\n")
    with pytest.raises(InputError, match=r"no repository left to read: 1 found, 0 match"):
        run_all(str(tmp_path / "flat"), str(tmp_path / "out"), ValidateConfig(include_repos=["other"]))


def test_folder_links_inside_kept_outside_and_broken_quarantined(tmp_path):
    source = tmp_path / "repos"
    (source / "r1" / "pkg").mkdir(parents=True)
    (source / "r2").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (source / "r1" / "pkg" / "real.py").write_text("def real(value):\n    return value + 1\n")
    (source / "r2" / "other.py").write_text("def other(value):\n    return value - 1\n")
    (tmp_path / "elsewhere" / "outside.py").write_text("def outside(value):\n    return value\n")
    os.symlink("pkg/real.py", source / "r1" / "alias.py")  # inside the repository: read
    os.symlink(tmp_path / "elsewhere" / "outside.py", source / "r1" / "link.py")
    os.symlink("../../r2/other.py", source / "r1" / "pkg" / "sibling.py")  # into another repository
    os.symlink("gone.py", source / "r1" / "broken.py")
    os.symlink(tmp_path / "elsewhere" / "gone.py", source / "r1" / "broken_out.py")
    out = str(tmp_path / "out")
    stats = run_all(str(source), out)
    kept = {f"{r['repo']}/{r['path']}": r["content"] for r in rows(out, "files")}
    held = {f"{r['repo']}/{r['path']}": r for r in rows(out, "quarantine")}
    assert set(kept) == {"r1/pkg/real.py", "r1/alias.py", "r2/other.py"}
    assert kept["r1/alias.py"] == kept["r1/pkg/real.py"]
    assert {p: r["reason"] for p, r in held.items()} == {
        "r1/link.py": "symlink_outside_repo",
        "r1/pkg/sibling.py": "symlink_outside_repo",
        "r1/broken_out.py": "symlink_outside_repo",
        "r1/broken.py": "unreadable",
    }
    assert held["r1/link.py"]["detail"].startswith(
        f"{source}/r1/link.py is a symbolic link to {tmp_path}/elsewhere/outside.py, outside the repository"
    )
    assert held["r1/pkg/sibling.py"]["detail"].startswith(
        f"{source}/r1/pkg/sibling.py is a symbolic link to {source}/r2/other.py"
    )
    assert held["r1/broken.py"]["detail"] == f"{source}/r1/broken.py: cannot stat: No such file or directory"
    assert stats["input_records"] == 7 == stats["kept"] + stats["quarantined"] and stats["invariant_ok"]


def test_corrupt_gzip_fails_naming_the_file(tmp_path, capsys):
    from codemill import cli

    good = open(os.path.join(STDLIB, "bisect.py"), encoding="utf-8").read()
    (tmp_path / "not_gzip.jsonl.gz").write_bytes(b"x\n")  # echo x > bad.jsonl.gz
    line = json.dumps({"repo_name": "org/r", "path": "bisect.py", "content": good}).encode() + b"\n"
    (tmp_path / "cut_short.jsonl.gz").write_bytes(gzip.compress(line * 50)[:-30])
    for name, why in (("not_gzip.jsonl.gz", "Not a gzipped file"), ("cut_short.jsonl.gz", "end-of-stream")):
        url = str(tmp_path / name)
        out = tmp_path / f"out-{name}"
        code = cli.main(["validate", "--source", url, "--output", str(out), "--no-tracking"])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]  # after the progress bar
        assert last.startswith(f"error: {url}: not a readable gzip/JSONL file: ") and why in last, err
        assert not (out / "_markers").exists() and not (out / "files").exists()  # nothing written
        with pytest.raises(InputError, match=re.escape(f"{url}: not a readable gzip/JSONL file")):
            run_all(url, str(tmp_path / f"direct-{name}"))


def test_folder_as_file_url_and_s3_prefix(s3_endpoint, tmp_path):
    local = build_folder_corpus(str(tmp_path / "repos"), links=False)  # S3 holds no symbolic links
    plain = run_all(local, str(tmp_path / "plain"))
    as_url = run_all(f"file://{local}", str(tmp_path / "url"))
    assert {r["path"] for r in rows(str(tmp_path / "url"), "files")} == {
        r["path"] for r in rows(str(tmp_path / "plain"), "files")
    }
    io.s3_client().create_bucket(Bucket="repos")
    io.upload_dir(local, "s3://repos/snapshot")
    remote = run_all("s3://repos/snapshot", str(tmp_path / "s3"), world_size=2)
    for key in ("input_records", "kept", "by_reason", "skipped_files"):
        assert remote[key] == plain[key] == as_url[key], key
    assert remote["selection"]["picked"] == ["alpha", "beta"]


def _stack_table(n: int = 4) -> pa.Table:
    names = ["bisect.py", "colorsys.py", "textwrap.py", "heapq.py"][:n]
    return pa.table(
        {
            "repo_name": [f"org/repo{i % 2}" for i in range(n)],
            "path": names,
            "content": [open(os.path.join(STDLIB, p), encoding="utf-8").read() for p in names],
            "lang": ["Python"] * n,
        }
    )


def test_parquet_with_configured_columns(tmp_path):
    table = _stack_table().rename_columns(["repo", "file", "text", "lang"])
    pq.write_table(table, tmp_path / "a.parquet")
    config = ValidateConfig(repo_column="repo", path_column="file", content_column="text", language_column="lang")
    stats = run_all(str(tmp_path / "*.parquet"), str(tmp_path / "out"), config)
    kept = rows(str(tmp_path / "out"), "files")
    assert stats["kept"] == 4 and [r["source"] for r in kept] == [f"{tmp_path}/a.parquet#{i}" for i in (0, 2, 1, 3)]


def test_parquet_missing_columns_names_file_expected_and_found(tmp_path):
    pq.write_table(_stack_table().drop_columns(["content"]), tmp_path / "part-1.parquet")
    with pytest.raises(InputError) as err:
        run_all(str(tmp_path / "part-1.parquet"), str(tmp_path / "out"))
    message = str(err.value)
    assert f"{tmp_path}/part-1.parquet: missing required column(s) ['content']" in message
    assert "expected ['repo_name', 'path', 'content']" in message and "found ['repo_name', 'path', 'lang']" in message
    assert not os.path.exists(tmp_path / "out" / "files")  # failed before writing anything


def test_tabular_source_errors(tmp_path):
    with pytest.raises(InputError, match=r"nothing-\*.jsonl: no files matched"):
        run_all(str(tmp_path / "nothing-*.jsonl"), str(tmp_path / "out"))
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(InputError, match=r"notes.txt is neither JSONL nor Parquet"):
        run_all(str(tmp_path / "*"), str(tmp_path / "out"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(io.StorageError, match=r"bad.parquet: not a readable Parquet file"):
        run_all(str(tmp_path / "bad.parquet"), str(tmp_path / "out"))


def test_gzipped_jsonl(tmp_path):
    table = _stack_table(2)
    with gzip.open(tmp_path / "part.jsonl.gz", "wt", encoding="utf-8") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row) + "\n")
    stats = run_all(str(tmp_path / "part.jsonl.gz"), str(tmp_path / "out"))
    assert stats["kept"] == 2 and stats["languages"] == {"python": 2}


def test_s3_jsonl_and_parquet(s3_endpoint, tmp_path):
    io.s3_client().create_bucket(Bucket="stack")
    table = _stack_table()
    io.write_parquet(table, "s3://stack/data/part-0.parquet")
    io.write_text(
        "s3://stack/data/part-1.jsonl", "".join(json.dumps(r) + "\n" for r in table.to_pylist()[:2]) + "{broken\n"
    )
    stats = run_all("s3://stack/data/part-*", "s3://stack/out", world_size=2)
    assert stats["input_records"] == 7 and stats["kept"] == 6 and stats["by_reason"] == {"malformed_json": 1}
    assert stats["invariant_ok"] and io.exists("s3://stack/out/report.md")
    held = (
        io.read_parquet("s3://stack/out/quarantine/shard-00000-of-00002.parquet").to_pylist()
        + io.read_parquet("s3://stack/out/quarantine/shard-00001-of-00002.parquet").to_pylist()
    )
    assert [r["source"] for r in held] == ["s3://stack/data/part-1.jsonl:3"]


def test_unreadable_s3_bucket_fails_naming_it(s3_endpoint, tmp_path):
    with pytest.raises(io.StorageError, match=r"s3://no-such-bucket/.*NoSuchBucket"):
        run_all("s3://no-such-bucket/data/*.parquet", str(tmp_path / "out"))

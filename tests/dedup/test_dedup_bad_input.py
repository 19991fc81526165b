"""Bad input: odd records are handled and counted, broken whole inputs fail naming the input."""

import os

import pyarrow as pa
import pytest
from dedup_corpus import package_repo, read_kept, records, write_input

from codemill import io
from codemill.dedup import DedupConfig, cluster, run, write_shard
from codemill.records import FILE_SCHEMA, FileRecord, to_table
from codemill.stage import InputError


def assert_counts_add_up(stats):
    assert stats["invariant_ok"], stats["problems"]
    assert stats["input_files"] == stats["kept_files"] + stats["removed_near_files"] + stats["removed_exact_files"]
    assert stats["input_repos"] == stats["kept_repos"] + stats["removed_near_repos"]


def test_an_empty_shard_and_a_repository_with_one_empty_file(tmp_path):
    inp = str(tmp_path / "in")
    write_input(inp, {"org/attr": package_repo("attr", max_files=5), "org/blank": {"empty.py": ""}}, shards=1)
    io.write_parquet(FILE_SCHEMA.empty_table(), os.path.join(inp, "files", "shard-empty.parquet"))
    stats = run(DedupConfig(), inp, str(tmp_path / "out"))
    assert_counts_add_up(stats)
    assert stats["input_repos"] == 2 and stats["repos_without_shingles"] == 1
    assert ("org/blank", "empty.py") in read_kept(str(tmp_path / "out"))
    empty_out = io.read_parquet(str(tmp_path / "out" / "files" / "shard-empty.parquet"))
    assert empty_out.num_rows == 0 and empty_out.schema.equals(FILE_SCHEMA)


def test_a_50_mb_single_line_file(tmp_path):
    unit = "".join(f"v{i} = f(v{(i * 7) % 5000}); " for i in range(5000))
    line = (unit * (50 * 1024 * 1024 // len(unit) + 1))[: 50 * 1024 * 1024]
    assert "\n" not in line and len(line) == 50 * 1024 * 1024
    repos = {"big/one": {"blob.py": line}, "org/attr": package_repo("attr", max_files=5)}
    inp = write_input(str(tmp_path / "in"), repos)
    del line, repos
    stats = run(DedupConfig(), inp, str(tmp_path / "out"))
    assert_counts_add_up(stats)
    assert stats["kept_files"] == stats["input_files"] and stats["kept_bytes"] > 50 * 1024 * 1024


def test_a_corpus_where_every_repository_is_a_duplicate(tmp_path):
    attr = package_repo("attr", max_files=8)
    repos = {f"copy{i}/attr": attr for i in range(5)}
    stats = run(DedupConfig(), write_input(str(tmp_path / "in"), repos, shards=2), str(tmp_path / "out"))
    assert_counts_add_up(stats)
    assert stats["kept_repos"] == 1 and stats["removed_near_repos"] == 4 and stats["clusters"] == 1
    assert {r for r, _ in read_kept(str(tmp_path / "out"))} == {"copy0/attr"}  # equal sizes: the first name


def test_no_input_files_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no Parquet files found"):
        run(DedupConfig(), str(tmp_path / "nothing"), str(tmp_path / "out"))


def test_missing_columns_are_named(tmp_path):
    io.write_parquet(pa.table({"repo": ["a"], "path": ["b"]}), str(tmp_path / "in" / "files" / "x.parquet"))
    with pytest.raises(InputError, match=r"missing columns \['content'"):
        run(DedupConfig(), str(tmp_path / "in"), str(tmp_path / "out"))


def test_a_repository_split_over_two_files_is_an_input_error(tmp_path):
    attr = package_repo("attr", max_files=4)
    recs = records({"org/attr": attr})
    for i, part in enumerate((recs[:2], recs[2:])):
        io.write_parquet(to_table(part, FILE_SCHEMA), str(tmp_path / "in" / "files" / f"part-{i}.parquet"))
    with pytest.raises(InputError, match="more than one input file.*org/attr"):
        run(DedupConfig(), str(tmp_path / "in"), str(tmp_path / "out"))


def test_interleaved_repositories_are_an_input_error(tmp_path):
    rows = [
        FileRecord(repo=r, path=p, content="x = 1", language="python").finalize()
        for r, p in (("a", "1.py"), ("b", "1.py"), ("a", "2.py"))
    ]
    io.write_parquet(to_table(rows, FILE_SCHEMA), str(tmp_path / "in" / "files" / "x.parquet"))
    with pytest.raises(InputError, match="'a' are not contiguous"):
        run(DedupConfig(), str(tmp_path / "in"), str(tmp_path / "out"))


def test_steps_out_of_order_fail_clearly(tmp_path):
    inp = write_input(str(tmp_path / "in"), {"org/attr": package_repo("attr", max_files=3)})
    with pytest.raises(RuntimeError, match=r"dedup-signature shards \[0, 1\] of 2 have not finished"):
        cluster(DedupConfig(), str(tmp_path / "out"), 2)
    with pytest.raises(RuntimeError, match="cluster step has not finished"):
        write_shard(DedupConfig(), inp, str(tmp_path / "out"), 0, 1)

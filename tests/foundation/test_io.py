"""codemill.io on local paths, file:// URLs and S3 over real HTTP (moto server)."""

import pyarrow as pa
import pytest

from codemill import io


def test_local_roundtrip_and_listing(tmp_path):
    base = str(tmp_path / "out")
    io.write_text(io.join(base, "a", "x.txt"), "hello")
    io.write_json(io.join(base, "b.json"), {"k": 1})
    assert io.read_text(f"file://{base}/a/x.txt") == "hello"
    assert io.read_json(io.join(base, "b.json")) == {"k": 1}
    assert io.list_files(base) == [f"{base}/a/x.txt", f"{base}/b.json"]
    assert io.expand(f"{base}/**/*.txt") == [f"{base}/a/x.txt"]
    assert io.exists(io.join(base, "b.json")) and not io.exists(io.join(base, "nope"))


def test_missing_local_file_names_the_path(tmp_path):
    missing = str(tmp_path / "missing.json")
    with pytest.raises(io.StorageError, match="missing.json"):
        io.read_json(missing)


def test_parquet_bytes_are_deterministic(tmp_path):
    table = pa.table({"a": [3, 1, 2], "b": ["x", "y", "z"]})
    io.write_parquet(table, str(tmp_path / "1.parquet"))
    io.write_parquet(table, str(tmp_path / "2.parquet"))
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()
    assert io.read_parquet(str(tmp_path / "1.parquet")).equals(table)


def test_s3_over_http(s3_endpoint, tmp_path):
    io.s3_client().create_bucket(Bucket="corpus")
    io.write_text("s3://corpus/runs/a/x.txt", "hello s3")
    io.write_parquet(pa.table({"n": [1, 2]}), "s3://corpus/runs/a/t.parquet")
    assert io.read_text("s3://corpus/runs/a/x.txt") == "hello s3"
    assert io.exists("s3://corpus/runs/a/x.txt") and not io.exists("s3://corpus/runs/a/nope")
    assert io.expand("s3://corpus/runs/*/*.parquet") == ["s3://corpus/runs/a/t.parquet"]
    assert io.read_parquet("s3://corpus/runs/a/t.parquet").column("n").to_pylist() == [1, 2]
    batches = list(io.iter_parquet_batches("s3://corpus/runs/a/t.parquet"))
    assert sum(b.num_rows for b in batches) == 2
    # directories: upload and download back
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f.bin").write_bytes(b"\x00\x01")
    io.upload_dir(str(tmp_path / "d"), "s3://corpus/dir")
    local = io.download_dir("s3://corpus/dir", str(tmp_path / "back"))
    assert (tmp_path / "back" / "sub" / "f.bin").read_bytes() == b"\x00\x01" and local == str(tmp_path / "back")


def test_s3_missing_bucket_is_a_clear_error(s3_endpoint):
    with pytest.raises(io.StorageError, match=r"s3://no-such-bucket/x.*NoSuchBucket"):
        io.read_text("s3://no-such-bucket/x")

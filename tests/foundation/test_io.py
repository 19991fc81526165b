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


# ---------------------------------------------------------------------------- S3 failures
# Every botocore/boto3 failure must surface as one StorageError line naming the URL and
# the cause (the CLI prints it and exits 2), on read, write, existence checks and listing.


def _no_credentials(monkeypatch, tmp_path):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    # No shared files and no instance metadata: nothing else can supply credentials.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    io.reset_s3_client()


@pytest.fixture
def unreachable_s3(monkeypatch, tmp_path):
    """Credentials set, endpoint on a closed local port, one attempt (fails in well under a second)."""
    port = _closed_port()
    for k, v in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    io.reset_s3_client()
    yield port
    io.reset_s3_client()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


def _storage_failures(tmp_path):
    """(description, callable) for each S3 operation codemill performs."""
    (tmp_path / "up").mkdir(exist_ok=True)
    (tmp_path / "up" / "f.txt").write_text("x")
    return [
        ("s3://corpus/x.txt", lambda: io.read_text("s3://corpus/x.txt")),
        ("s3://corpus/w.txt", lambda: io.write_text("s3://corpus/w.txt", "data")),
        ("s3://corpus/t.parquet", lambda: io.write_parquet(pa.table({"n": [1]}), "s3://corpus/t.parquet")),
        ("s3://corpus/t.parquet", lambda: io.read_parquet("s3://corpus/t.parquet")),
        ("s3://corpus/m.done", lambda: io.exists("s3://corpus/m.done")),
        ("s3://corpus/d/", lambda: io.list_files("s3://corpus/d")),
        ("s3://corpus/", lambda: io.expand("s3://corpus/*.parquet")),
        ("s3://corpus/up/f.txt", lambda: io.upload_dir(str(tmp_path / "up"), "s3://corpus/up")),
        ("s3://corpus/d/", lambda: io.download_dir("s3://corpus/d", str(tmp_path / "down"))),
    ]


def test_s3_without_credentials_is_a_one_line_error(s3_endpoint, monkeypatch, tmp_path):
    _no_credentials(monkeypatch, tmp_path)
    for url, op in _storage_failures(tmp_path):
        with pytest.raises(io.StorageError) as e:
            op()
        msg = str(e.value)
        assert "\n" not in msg and "NoCredentialsError: Unable to locate credentials" in msg, msg
        assert msg.startswith(url + ": cannot "), msg


def test_s3_unreachable_endpoint_is_a_one_line_error(unreachable_s3, tmp_path):
    for url, op in _storage_failures(tmp_path):
        with pytest.raises(io.StorageError) as e:
            op()
        msg = str(e.value)
        assert "\n" not in msg and f"127.0.0.1:{unreachable_s3}" in msg, msg
        assert "EndpointConnectionError" in msg or "Could not connect" in msg, msg
        assert msg.startswith(url + ": cannot "), msg


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--source", "s3://corpus/x.parquet", "--output", "{tmp}/v"],
        ["validate", "--source", "{src}", "--output", "s3://corpus/v"],
        ["dedup", "--input", "s3://corpus/v", "--output", "{tmp}/d"],
        ["pack", "--input", "s3://corpus/d", "--output", "{tmp}/p"],
        ["train", "--input", "s3://corpus/p", "--output", "{tmp}/t"],
    ],
)
def test_every_stage_exits_2_on_unreachable_s3(unreachable_s3, tmp_path, capsys, argv):
    from codemill import cli

    (tmp_path / "src" / "repo").mkdir(parents=True)
    (tmp_path / "src" / "repo" / "a.py").write_text("def f():\n    return 1\n")
    argv = [a.format(tmp=tmp_path, src=tmp_path / "src") for a in argv] + ["--no-tracking"]
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: s3://corpus/"), err
    assert f"127.0.0.1:{unreachable_s3}" in err[0]

"""dedup through S3 (moto) and through its CLI, phase by phase as the pipeline runs it."""

import argparse
import json
import os

import pytest
from dedup_corpus import drop_files, package_repo, read_kept, write_input

from codemill import io
from codemill.dedup import DedupConfig, run
from codemill.dedup.cli import register


def repos():
    jinja = package_repo("jinja2", max_files=8)
    return {"org/jinja2": jinja, "fork/jinja2": drop_files(jinja, 8), "org/attr": package_repo("attr", max_files=6)}


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        io.reset_s3_client()
        io.s3_client().create_bucket(Bucket="corpus")
        yield "s3://corpus"
    io.reset_s3_client()


def test_s3_input_and_output_give_the_same_result_as_local(s3, tmp_path):
    local_in = write_input(str(tmp_path / "in"), repos(), shards=2)
    local = run(DedupConfig(), local_in, str(tmp_path / "out"))
    remote_in = write_input(f"{s3}/validate", repos(), shards=2)
    remote = run(DedupConfig(), remote_in, f"{s3}/dedup", world_size=2)
    assert remote == local and remote["removed_near_repos"] == 1
    assert read_kept(f"{s3}/dedup") == read_kept(str(tmp_path / "out"))
    assert io.read_bytes(f"{s3}/dedup/clusters.parquet") == io.read_bytes(str(tmp_path / "out" / "clusters.parquet"))


def cli(argv):
    parser = argparse.ArgumentParser(prog="codemill")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dedup", *argv, "--no-tracking"])
    return args.func(args)


def printed_result(capsys) -> dict:
    """The JSON the command prints last (config lines come before it)."""
    lines = capsys.readouterr().out.splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip() == "{")  # kfp.local may have indented stdout
    return json.loads("\n".join(lines[start:]))


def test_cli_phases_equal_the_all_phase(tmp_path, capsys):
    inp = write_input(str(tmp_path / "in"), repos(), shards=3)
    flags = ["--threshold", "0.75", "--num-perm", "128", "--check", "none", "--seed", "3"]
    assert cli(["--input", inp, "--output", str(tmp_path / "all"), *flags]) == 0
    together = printed_result(capsys)
    out = str(tmp_path / "phased")
    for phase, ranks in (("signature", (0, 1)), ("cluster", (0,)), ("write", (1, 0)), ("finish", (0,))):
        for rank in ranks:
            cli(["--phase", phase, "--input", inp, "--output", out, "--rank", str(rank), "--world-size", "2", *flags])
    assert printed_result(capsys) == together and together["removed_near_repos"] == 1
    config = io.read_json(os.path.join(out, "_markers", "dedup-cluster.shard-00000-of-00001.done"))["config"]
    assert (config["threshold"], config["num_perm"], config["check"], config["seed"]) == (0.75, 128, "none", 3)


def test_codemill_main_reports_a_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    import codemill.cli

    monkeypatch.setattr(codemill.cli, "COMMAND_MODULES", ["codemill.dedup.cli"])  # as the integrated CLI will
    code = codemill.cli.main(
        ["dedup", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out"), "--no-tracking"]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path / 'missing'}: no Parquet files found")


def test_cli_needs_input_for_the_signature_phase(tmp_path):
    with pytest.raises(SystemExit):
        cli(["--phase", "signature", "--output", str(tmp_path / "out")])

"""Determinism, sharded == single run, resumable shards, and the invariant check in finish."""

import json
import os

import pyarrow.parquet as pq
import pytest
from validate_corpus import EXPECTED, build_folder_corpus, build_jsonl, rows, run_all

from codemill import stage
from codemill.stage import InputError
from codemill.tracking import NoOpTracker
from codemill.validate import InvariantError, ValidateConfig, finish, run_shard
from codemill.validate.steps import Tally


def _key(rows_: list[dict]) -> set:
    return {json.dumps(r, sort_keys=True) for r in rows_}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("shard-corpus")
    build_jsonl(str(base / "stack" / "a.jsonl"))
    return build_folder_corpus(str(base / "repos")), str(base / "stack" / "a.jsonl")


def test_same_input_same_output_bytes(corpus, tmp_path):
    folder, _ = corpus
    for out in ("one", "two"):
        run_all(folder, str(tmp_path / out))
    for name in (
        "files/shard-00000-of-00001.parquet",
        "quarantine/shard-00000-of-00001.parquet",
        "stats.json",
        "report.md",
    ):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@pytest.mark.parametrize("which", [0, 1])
def test_sharded_run_equals_single_run(corpus, tmp_path, which):
    source = corpus[which]
    single = run_all(source, str(tmp_path / "single"))
    sharded = run_all(source, str(tmp_path / "sharded"), world_size=3)
    for folder in ("files", "quarantine"):
        assert _key(rows(str(tmp_path / "sharded"), folder)) == _key(rows(str(tmp_path / "single"), folder))
    for key in ("input_records", "kept", "quarantined", "by_reason", "redactions", "languages", "bytes_in"):
        assert sharded[key] == single[key], key
    assert sharded["shards"] == 3 and sharded["invariant_ok"]


def test_a_repository_stays_in_one_shard(tmp_path):
    source = str(tmp_path / "repos")
    for repo in range(8):
        for f in range(3):
            os.makedirs(f"{source}/r{repo}", exist_ok=True)
            with open(f"{source}/r{repo}/m{f}.py", "w") as fh:
                fh.write(f"def function_{f}(value):\n    return value * {f}\n")
    run_all(source, str(tmp_path / "out"), world_size=3)
    shards_of_repo: dict[str, set] = {}
    for rank in range(3):
        path = tmp_path / "out" / "files" / f"{stage.shard_name(rank, 3)}.parquet"
        for repo in pq.read_table(path, columns=["repo"]).column("repo").to_pylist():
            shards_of_repo.setdefault(repo, set()).add(rank)
    assert len(shards_of_repo) == 8 and all(len(s) == 1 for s in shards_of_repo.values())
    assert len({next(iter(s)) for s in shards_of_repo.values()}) > 1  # the work is actually spread


def test_a_finished_shard_is_skipped_on_retry(corpus, tmp_path):
    folder, _ = corpus
    out = str(tmp_path / "out")
    first = run_shard(ValidateConfig(), folder, out, 0, 2, NoOpTracker())
    shard_file = tmp_path / "out" / "files" / "shard-00000-of-00002.parquet"
    before = shard_file.stat().st_mtime_ns
    # a retry must not read the source again: give it one that would fail
    again = run_shard(ValidateConfig(), str(tmp_path / "gone"), out, 0, 2, NoOpTracker())
    assert again == first and shard_file.stat().st_mtime_ns == before


def test_finish_waits_for_every_shard(corpus, tmp_path):
    folder, _ = corpus
    out = str(tmp_path / "out")
    run_shard(ValidateConfig(), folder, out, 1, 2, NoOpTracker())
    with pytest.raises(RuntimeError, match=r"validate shards \[0\] of 2 have not finished"):
        finish(out, 2, NoOpTracker())


def test_finish_raises_and_records_a_broken_invariant(corpus, tmp_path):
    folder, _ = corpus
    out = str(tmp_path / "out")
    run_shard(ValidateConfig(), folder, out, 0, 1, NoOpTracker())
    marker = stage.marker_url(out, "validate", 0, 1)
    stats = json.loads(open(marker).read())
    stats["input_records"] += 1  # a record that was read but went nowhere
    with open(marker, "w") as f:
        json.dump(stats, f)
    with pytest.raises(InvariantError, match=rf"input_records={len(EXPECTED) + 1} but kept=\d+ \+ quarantined=\d+"):
        finish(out, 1, NoOpTracker())
    assert stage.read_stats(out)["invariant_ok"] is False
    assert "**VIOLATED**" in open(os.path.join(out, "report.md")).read()


@pytest.mark.parametrize("fault", ["lost", "counted_twice"])
def test_a_shard_that_loses_or_doubles_a_record_fails(corpus, tmp_path, monkeypatch, fault):
    folder, _ = corpus
    add = Tally.add

    def faulty_add(self, size, outcome, redactions):
        if outcome.path == "bisect.py":
            if fault == "lost":
                return  # the record was read, then went nowhere
            add(self, size, outcome, redactions)
        add(self, size, outcome, redactions)

    monkeypatch.setattr(Tally, "add", faulty_add)
    out = str(tmp_path / "out")
    kept = sum(1 for r in EXPECTED.values() if r is None) + (-1 if fault == "lost" else 1)
    held = sum(1 for r in EXPECTED.values() if r)
    with pytest.raises(
        InvariantError,
        match=rf"shard-00000-of-00001: input_records={len(EXPECTED)} but "
        rf"kept={kept} \+ quarantined={held}",
    ):
        run_shard(ValidateConfig(), folder, out, 0, 1, NoOpTracker())
    assert not stage.shard_done(out, "validate", 0, 1)  # a retry reads the shard again
    assert not os.path.exists(os.path.join(out, "files"))


def test_a_finished_shard_with_other_settings_is_not_reused(corpus, tmp_path):
    folder, _ = corpus
    out = str(tmp_path / "out")
    first = run_shard(ValidateConfig(), folder, out, 0, 1, NoOpTracker())
    assert first["config"] == stage.config_dict(ValidateConfig())
    assert json.loads(open(stage.marker_url(out, "validate", 0, 1)).read())["config"]["max_file_bytes"] == 1_000_000
    changed = ValidateConfig(max_file_bytes=1000, languages=["python"])
    with pytest.raises(InputError) as err:
        run_shard(changed, folder, out, 0, 1, NoOpTracker())
    message = str(err.value)
    assert message.startswith(f"{out}: validate shard-00000-of-00001 already finished with other settings")
    assert "languages: [] -> ['python']" in message and "max_file_bytes: 1000000 -> 1000" in message
    assert "min_alpha_fraction" not in message  # only the settings that differ
    assert run_shard(ValidateConfig(), folder, out, 0, 1, NoOpTracker()) == first  # same settings: skipped


def test_cli_rerun_with_other_settings_fails_naming_them(tmp_path, capsys):
    from codemill import cli

    source = str(tmp_path / "a.jsonl")
    build_jsonl(source)
    out = str(tmp_path / "out")
    base = ["validate", "--source", source, "--output", out, "--no-tracking"]
    assert cli.main(base) == 0
    assert cli.main(base) == 0  # the same settings again: the finished shard is reused
    assert "already done; skipping" in capsys.readouterr().out
    assert cli.main(base + ["--max-file-bytes", "1000"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and out in err and "max_file_bytes: 1000000 -> 1000" in err

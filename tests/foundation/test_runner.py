"""The step runner: one preamble for every step (skip, refuse, markers, prerequisites, names)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest

from codemill import cli, runner, stage, steps
from codemill.runner import Step
from codemill.stage import InputError, PrerequisiteError


@dataclass
class CountConfig:
    limit: int = field(default=3, metadata={"help": "how many"})
    label: str = field(default="a", metadata={"help": "a label"})

    def ensure_valid(self) -> CountConfig:
        if self.limit < 0:
            raise InputError(f"count: limit must be >= 0, got {self.limit}")
        return self


CALLS: list[tuple[int, int]] = []


def count_step(config: CountConfig, ctx: runner.Context) -> dict:
    CALLS.append((ctx.rank, ctx.world_size))
    return {"counted": config.limit, "rank": ctx.rank, "source": ctx.input("source")}


@pytest.fixture
def count_steps(monkeypatch):
    CALLS.clear()
    demo = Step(
        "count-shard",
        "count",
        f"{__name__}:CountConfig",
        f"{__name__}:count_step",
        sharded=True,
        marker="count",
        inputs=("source",),
    )
    monkeypatch.setitem(steps.STEPS, demo.name, demo)
    return demo


def test_every_step_in_the_table_resolves():
    for step in steps.STEPS.values():
        assert callable(step.function()), step.name
        if step.config:
            assert callable(getattr(step.config_class(), "ensure_valid", None)), step.name
        assert step.marker is None or not step.marker.endswith(".done")


def test_a_finished_shard_is_skipped_with_the_same_config(count_steps, tmp_path, capsys):
    out = str(tmp_path)
    first = runner.run("count-shard", CountConfig(), output=out, rank=1, world_size=2, source="x")
    assert first["config"] == {"limit": 3, "label": "a"} and CALLS == [(1, 2)]
    again = runner.run("count-shard", CountConfig(), output=out, rank=1, world_size=2, source="x")
    assert again == first and CALLS == [(1, 2)]  # the function did not run again
    assert "count shard-00001-of-00002 already done; skipping" in capsys.readouterr().out


def test_a_changed_config_is_refused_naming_each_field(count_steps, tmp_path):
    out = str(tmp_path)
    runner.run("count-shard", CountConfig(), output=out, source="x")
    with pytest.raises(InputError) as err:
        runner.run("count-shard", CountConfig(limit=5, label="b"), output=out, source="x")
    message = str(err.value)
    assert message.startswith(f"{out}: count shard-00000-of-00001 already finished with other settings")
    assert "limit: 3 -> 5" in message and "label: 'a' -> 'b'" in message
    assert CALLS == [(0, 1)]


@pytest.mark.parametrize("content", [b"", b'{"counted": 3, "conf', b"\xff\xfe"])
def test_a_half_written_marker_counts_as_absent(count_steps, tmp_path, content):
    out = str(tmp_path)
    marker = stage.marker_url(out, "count", 0, 1)
    os.makedirs(os.path.dirname(marker))
    with open(marker, "wb") as f:
        f.write(content)  # a kill between create and write
    stats = runner.run("count-shard", CountConfig(), output=out, source="x")
    assert CALLS == [(0, 1)] and json.loads(open(marker).read()) == stats


def test_markers_are_written_atomically(tmp_path, monkeypatch):
    out = str(tmp_path)
    stage.mark_shard_done(out, "count", 0, 1, {"kept": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        stage.mark_shard_done(out, "count", 0, 1, {"kept": 2})
    assert stage.read_marker(out, "count", 0, 1) == {"kept": 1}  # the old marker, whole
    assert os.listdir(os.path.dirname(stage.marker_url(out, "count", 0, 1))) == ["count.shard-00000-of-00001.done"]


def test_a_bad_config_fails_before_the_step_runs(count_steps, tmp_path):
    with pytest.raises(InputError, match="limit must be >= 0"):
        runner.run("count-shard", CountConfig(limit=-1), output=str(tmp_path), source="x")
    with pytest.raises(InputError, match="invalid shard"):
        runner.run("count-shard", CountConfig(), output=str(tmp_path), rank=2, world_size=2, source="x")
    with pytest.raises(InputError, match="count-shard: needs --source"):
        runner.run("count-shard", CountConfig(), output=str(tmp_path))
    assert CALLS == []


def test_run_names_are_the_same_from_the_cli_and_kfp():
    pack = steps.STEPS["pack-shard"]
    assert pack.run_name(1, 2) == "pack-shard-1" and pack.run_name(0, 1) == "pack-shard"
    assert steps.STEPS["evaluate-generate"].run_name() == "evaluate-generate"
    assert steps.STEPS["dedup-cluster"].run_name(0, 4) == "dedup-cluster"  # runs once whatever the fan-out


def test_prerequisite_errors_are_one_line_with_exit_2(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert issubclass(PrerequisiteError, RuntimeError) and issubclass(PrerequisiteError, InputError)
    assert cli.main(["validate", "--output", out, "--world-size", "2", "--finish", "--no-tracking"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "validate shards [0, 1] of 2 have not finished" in err
    for phase in ("cluster", "finish"):
        assert cli.main(["dedup", "--step", phase, "--output", out, "--no-tracking"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "have not finished" in err and err.count("\n") == 1, err
    assert cli.main(["dedup", "--step", "write", "--input", out, "--output", out, "--no-tracking"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_docs_show_the_step_table_as_it_is():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "architecture.md"), encoding="utf-8").read()
    start, end = "<!-- step table: codemill.steps.markdown() -->\n", "\n<!-- end of step table -->"
    assert doc[doc.index(start) + len(start) : doc.index(end)] == steps.markdown()

"""`make run` for a person: one line per task on the terminal, each task's full log in its own file."""

import io
import os
import re

import pytest
from kfp import dsl
from kfp.dsl import Metrics, Output

from codemill.pipeline_cli import init_local
from codemill.pipeline_log import key_figure, task_log
from components._common import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def shard(rank: int) -> int:
    print(f"shard {rank} says hello")
    return rank


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_finish(kept: int, metrics: Output[Metrics]) -> str:
    print('{"config": "the resolved config dump"}')
    metrics.log_metric("kept", kept)
    metrics.log_metric("quarantined", 2)
    metrics.log_metric("bytes_in", 12345)
    return "done"


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def broken():
    raise ValueError("a bad record")


@dsl.pipeline(name="tiny")
def tiny(kept: int = 3):
    with dsl.ParallelFor(items=[0, 1], name="shards") as rank:
        shard(rank=rank)
    validate_finish(kept=kept)


@dsl.pipeline(name="tiny-broken")
def tiny_broken():
    broken()


LINE = re.compile(r"^  (\S+) +(SUCCESS|FAILURE) +(\d+\.\d) s(  .*)?$")


def test_one_line_per_task_and_every_log_in_its_own_file(tmp_path):
    init_local(str(tmp_path / "kfp"))
    terminal = io.StringIO()
    with task_log(str(tmp_path / "logs"), terminal) as tasks:
        tiny()
    lines = terminal.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert sorted(LINE.match(line).group(1) for line in lines) == ["shard", "shard", "validate-finish"]
    assert next(t for t in tasks if t["task"] == "validate-finish")["figure"] == "kept=3 quarantined=2"
    assert "kept=3 quarantined=2" in next(line for line in lines if "validate-finish" in line)
    for noise in ("RuntimeWarning", "executor_input", "Executing task", "config dump"):
        assert noise not in terminal.getvalue()

    shard_logs = [open(t["log"]).read() for t in tasks if t["task"] == "shard"]
    for rank in (0, 1):  # each iteration's output is in its own file only
        assert sorted(f"shard {rank} says hello" in text for text in shard_logs) == [False, True]
    finish = open(next(t["log"] for t in tasks if t["task"] == "validate-finish")).read()
    assert "the resolved config dump" in finish and "executor_input" in finish and "RuntimeWarning" in finish
    names = sorted(os.listdir(tmp_path / "logs"))
    assert names[-1] == "pipeline.log"  # what kfp.local prints outside any task
    assert sorted(n[3:] for n in names[:-1]) == ["shard.log", "shard.log", "validate-finish.log"]
    assert {t["log"] for t in tasks} == {str(tmp_path / "logs" / n) for n in names[:-1]}


def test_a_failed_task_says_where_its_log_is(tmp_path):
    init_local(str(tmp_path / "kfp"))
    terminal = io.StringIO()
    with pytest.raises(RuntimeError), task_log(str(tmp_path / "logs"), terminal) as tasks:
        tiny_broken()
    assert [(t["task"], t["status"]) for t in tasks] == [("broken", "FAILURE")]
    assert f"    log: {tasks[0]['log']}" in terminal.getvalue()
    assert "ValueError: a bad record" in open(tasks[0]["log"]).read()


def test_key_figures_pick_the_stage_metrics():
    class FakeMetrics:
        schema_title = "system.Metrics"
        metadata = {
            "humaneval.greedy.pass_at_1": 0.25,
            "humaneval.sampled.pass_at_10": 0.5,
            "heldout.perplexity": 41.5,
            "tasks": 20,
        }

    assert (
        key_figure("eval-score", {"metrics": FakeMetrics(), "Output": "/x"})
        == "humaneval.greedy.pass_at_1=0.25 heldout.perplexity=41.5"
    )
    assert key_figure("start-run", {"run_dir": "/w/runs/r1", "shards": [0, 1]}) == "/w/runs/r1"
    assert key_figure("dedup-cluster", {"Output": "/x"}) == ""

"""The tasks KFP components: they compile with their fan-out, and under kfp.local they make
the same tasks as the step runner does from the CLI."""

import glob
import os

import pyarrow.parquet as pq
import pytest
import yaml
from kfp import compiler, dsl
from tasks_corpus import EXPECTED, write_corpus
from test_tasks_stage import mine, tasks

from components._common import cpu_task
from components.run import start_run
from components.tasks import tasks_finish, tasks_shards


@dsl.pipeline(name="tasks-only")
def tasks_only(input: str, output: str, work_root: str, num_shards: int, seed: int, options: dict):
    """The tasks step as the pipeline wires it after dedup (start_run gives the layout)."""
    layout = start_run(
        work_root=work_root, run_name="test", kfp_run_id="local", tracking_uri="none", num_shards=num_shards
    ).outputs
    tracking = dict(tracking_uri="none", parent_run_id=layout["parent_run_id"])
    shards = tasks_shards(
        input=input,
        output=output,
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=options,
        **tracking,
    )
    cpu_task(
        tasks_finish(output=output, world_size=num_shards, seed=seed, options=options, **tracking),
        cpu="1",
        memory="2Gi",
    ).after(shards)


def test_components_compile_with_their_fan_out(tmp_path):
    package = tmp_path / "tasks.yaml"
    compiler.Compiler().compile(tasks_only, str(package))
    spec = next(yaml.safe_load_all(package.read_text()))
    commands = " ".join(
        " ".join(e["container"].get("command", []) + e["container"].get("args", []))
        for e in spec["deploymentSpec"]["executors"].values()
    )
    assert "tasks_shard" in commands and "tasks_finish" in commands
    loops = [
        t
        for c in spec["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
        if "parameterIterator" in t
    ]
    assert len(loops) == 1


@pytest.mark.slow
def test_kfp_local_run_matches_the_step_runner(tmp_path):
    from codemill.pipeline_cli import init_local

    corpus = write_corpus(str(tmp_path / "corpus"))
    init_local(str(tmp_path / "kfp"))
    # Struct turns numbers into floats: timeout and workers arrive as floats and must still work.
    got = str(tmp_path / "runs" / "test" / "tasks")
    tasks_only(
        input=corpus,
        output=got,
        work_root=str(tmp_path / "runs"),
        num_shards=2,
        seed=0,
        options={"timeout": 1.5, "workers": 2, "kinds": ["output", "input"]},
    )
    expected = str(tmp_path / "py")
    mine(corpus, expected, world_size=2, kinds=["output", "input"])
    assert tasks(got) == tasks(expected) and len(tasks(got)) == 8
    held = sum(pq.read_table(f).num_rows for f in glob.glob(os.path.join(got, "quarantine", "*.parquet")))
    assert held == sum(r is not None for r in EXPECTED.values()) + 1  # and the vendored copy

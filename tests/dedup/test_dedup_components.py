"""The dedup KFP components: they compile into a pipeline wired as codemill_pipeline wires
them, and that pipeline runs under kfp.local with the same result as codemill.dedup.run."""

import os

import pytest
import yaml
from dedup_corpus import drop_files, package_repo, write_input
from kfp import compiler, dsl

from codemill import io
from codemill.dedup import DedupConfig, run
from components._common import cpu_task
from components.dedup import dedup_cluster, dedup_finish, dedup_signature_shards, dedup_write_shards
from components.run import start_run


@dsl.pipeline(name="dedup-only")
def dedup_only(input: str, work_root: str, num_shards: int, seed: int, options: dict):
    """The dedup part of codemill_pipeline, wired the same way (start_run gives the layout)."""
    layout = start_run(
        work_root=work_root, run_name="test", kfp_run_id="local", tracking_uri="none", num_shards=num_shards
    ).outputs
    tracking = dict(tracking_uri="none", parent_run_id=layout["parent_run_id"])
    signed = dedup_signature_shards(
        input=input,
        output=layout["dedup_dir"],
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=options,
        **tracking,
    )
    clustered = cpu_task(
        dedup_cluster(output=layout["dedup_dir"], world_size=num_shards, seed=seed, options=options, **tracking),
        cpu="2",
        memory="8Gi",
    ).after(signed)
    written = dedup_write_shards(
        input=input,
        output=layout["dedup_dir"],
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=options,
        **tracking,
    ).after(clustered)
    cpu_task(dedup_finish(output=layout["dedup_dir"], world_size=num_shards, **tracking), cpu="1", memory="2Gi").after(
        written
    )


def test_components_compile_with_their_fan_outs(tmp_path):
    package = tmp_path / "dedup.yaml"
    compiler.Compiler().compile(dedup_only, str(package))
    spec = next(yaml.safe_load_all(package.read_text()))  # later documents hold platform settings
    executors = spec["deploymentSpec"]["executors"]
    commands = " ".join(
        " ".join(e["container"].get("command", []) + e["container"].get("args", [])) for e in executors.values()
    )
    for name in ("dedup_signature_shard", "dedup_cluster", "dedup_write_shard", "dedup_finish"):
        assert name in commands
    loops = [
        t
        for c in spec["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
        if "parameterIterator" in t
    ]
    assert len(loops) == 2


@pytest.mark.slow
def test_kfp_local_run_matches_the_python_run(tmp_path):
    from codemill.pipeline_cli import init_local

    jinja = package_repo("jinja2", max_files=6)
    inp = write_input(str(tmp_path / "in"), {"org/jinja2": jinja, "fork/jinja2": drop_files(jinja, 6)}, shards=2)
    init_local(str(tmp_path / "kfp"))  # as `codemill pipeline run --local` does
    # Struct turns numbers into floats: num_perm arrives as 128.0 and must still work.
    dedup_only(
        input=inp,
        work_root=str(tmp_path / "runs"),
        num_shards=2,
        seed=0,
        options={"num_perm": 128, "report_clusters": 5},
    )
    expected = run(DedupConfig(num_perm=128, report_clusters=5), inp, str(tmp_path / "py-out"))
    assert io.read_json(os.path.join(tmp_path, "runs", "test", "dedup", "stats.json")) == expected
    assert expected["removed_near_repos"] == 1

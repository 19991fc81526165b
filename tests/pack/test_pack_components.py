"""The pack KFP components: they compile wired as codemill_pipeline wires them, and that
pipeline runs under kfp.local with the same bytes as the Python steps."""

# no `from __future__ import annotations`: KFP reads the pipeline signature at runtime
import hashlib
import os

import pytest
import yaml
from kfp import compiler, dsl
from pack_fixtures import package_files, write_dedup_output

from codemill.pack import PackConfig, finish, pack_shard, train_tokenizer
from components._common import cpu_task
from components.pack import pack_finish, pack_shards, pack_tokenizer
from components.run import start_run


@dsl.pipeline(name="pack-only")
def pack_only(input: str, work_root: str, num_shards: int, seed: int, options: dict):
    """The pack part of codemill_pipeline, wired the same way (start_run gives the layout)."""
    layout = start_run(
        work_root=work_root, run_name="test", kfp_run_id="local", tracking_uri="none", num_shards=num_shards
    ).outputs
    tracking = dict(tracking_uri="none", parent_run_id=layout["parent_run_id"])
    planned = cpu_task(
        pack_tokenizer(input=input, output=layout["pack_dir"], seed=seed, options=options, **tracking),
        cpu="2",
        memory="8Gi",
    )
    parts = pack_shards(
        input=input,
        output=planned.output,
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=options,
        **tracking,
    )
    cpu_task(pack_finish(output=layout["pack_dir"], world_size=num_shards, **tracking), cpu="1", memory="4Gi").after(
        parts
    )


def test_pack_components_compile_into_a_pipeline(tmp_path):
    path = tmp_path / "pack.yaml"
    compiler.Compiler().compile(pack_only, str(path))
    spec = next(yaml.safe_load_all(path.read_text()))  # a platform spec may follow
    executors = spec["deploymentSpec"]["executors"]
    assert {"exec-pack-tokenizer", "exec-pack-shard", "exec-pack-finish"} <= set(executors)
    assert {"metrics", "report"} <= set(spec["components"]["comp-pack-finish"]["outputDefinitions"]["artifacts"])
    root = spec["root"]["dag"]["tasks"]
    # the shards wait for the tokenizer task: they take its output as their output folder
    assert (
        root["pack-shards"]["inputs"]["parameters"]["output"]["taskOutputParameter"]["producerTask"] == "pack-tokenizer"
    )
    assert "pack-shards" in root["pack-finish"]["dependentTasks"]
    loops = [
        t
        for c in spec["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
        if "parameterIterator" in t
    ]
    assert len(loops) == 1


def _digest(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.slow
def test_kfp_local_run_writes_the_same_bytes_as_the_python_steps(tmp_path):
    from codemill.pipeline_cli import init_local

    source = write_dedup_output(
        str(tmp_path / "dedup"), {p: package_files(p, max_files=6) for p in ("idna", "certifi", "requests")}
    )
    init_local(str(tmp_path / "kfp"))  # as `codemill pipeline run --local` does
    # a Struct turns numbers into floats: seq_len arrives as 96.0 and must still work
    options = {"seq_len": 96, "vocab_size": 600, "val_fraction": 0.34}
    pack_only(input=source, work_root=str(tmp_path / "runs"), num_shards=2, seed=3, options=options)

    expected = str(tmp_path / "python")
    config = PackConfig(**options, seed=3)
    train_tokenizer(config, source, expected)
    for rank in (0, 1):
        pack_shard(config, source, expected, rank, 2)
    finish(expected, 2)
    got = os.path.join(tmp_path, "runs", "test", "pack")
    for name in (
        "train/tokens.npy",
        "train/segments.npy",
        "val/documents.parquet",
        "heldout/documents.parquet",
        "meta.json",
        "stats.json",
        "tokenizer/tokenizer.json",
    ):
        assert _digest(os.path.join(got, name)) == _digest(os.path.join(expected, name)), name

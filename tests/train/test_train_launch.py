"""What the KFP step runs: in process on CPU, or a TrainJob when several nodes are asked for."""

from __future__ import annotations

import json
import os

import pytest

from codemill.stage import InputError
from codemill.train import TrainConfig, run_step, trainjob
from tests.train.conftest import fast_options


def test_one_cpu_pod_trains_in_process(tiny_pack, tmp_path):
    stats = run_step(
        TrainConfig(**fast_options(max_steps=2, eval_every=2)),
        tiny_pack,
        str(tmp_path),
        gpu_count=1,
        num_nodes=1,
        tracking_uri="none",
    )
    assert stats["steps"] == 2 and stats["world_size"] == 1
    assert json.load(open(tmp_path / "stats.json"))["steps"] == 2


def test_several_nodes_launch_a_deepspeed_trainjob_and_read_its_stats(tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr(trainjob, "run", lambda job: launched.append(job) or "done")
    (tmp_path / "stats.json").write_text(json.dumps({"steps": 10}))  # what the TrainJob's rank 0 writes
    stats = run_step(
        TrainConfig(preset="deepseek-coder-6.7b", deepspeed="zero3_offload"),
        "s3://b/pack",
        str(tmp_path),
        gpu_count=8,
        num_nodes=2,
        node_selector={"pool": "a100"},
        tracking_uri="http://mlflow",
        parent_run_id="p1",
        image="img:1",
    )
    assert stats == {"steps": 10}
    (job,) = launched
    assert job["spec"]["runtimeRef"]["name"] == "deepspeed-distributed"
    assert job["spec"]["trainer"]["numNodes"] == 2 and job["spec"]["trainer"]["image"] == "img:1"
    command = job["spec"]["trainer"]["command"]
    assert command[command.index("--deepspeed") + 1] == "zero3_offload"
    assert job["metadata"]["name"] == trainjob.job_name(str(tmp_path))


def test_several_nodes_without_an_image_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="needs the training image"):
        run_step(TrainConfig(), "p", str(tmp_path), gpu_count=8, num_nodes=2)
    assert not os.path.exists(tmp_path / "checkpoints")

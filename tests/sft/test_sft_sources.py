"""Where the base comes from (a folder, s3:// through moto, models:/ in a sqlite MLflow registry, a hub id),
an S3 output that survives preemption, and what MLflow records."""

from __future__ import annotations

import json
import os

import pytest
from mlflow.tracking import MlflowClient
from transformers import AutoTokenizer

from codemill import io
from codemill.cli import main
from codemill.serve import registry
from codemill.sft import SftConfig, SftInterrupted, base, sft
from codemill.sft.checkpoints import complete_steps
from codemill.stage import InputError
from codemill.tracking import stage_run
from tests.sft.conftest import conversations, fast, write_synth
from tests.sft.test_sft_resume import SigtermAtStep

SHORT = fast(max_steps=8, save_steps=4, logging_steps=2, eval_steps=4, eval_fraction=0.25)


def test_a_hub_id_is_passed_through_and_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(base, "unreachable", lambda address: "")  # the hub answers; nothing is fetched here
    assert base.resolve("deepseek-ai/deepseek-coder-6.7b-base", str(tmp_path)) == "deepseek-ai/deepseek-coder-6.7b-base"
    assert not os.listdir(tmp_path)
    assert not base.is_hub_id(str(tmp_path)) and not base.is_hub_id("s3://b/model")


def test_a_mistyped_local_path_offline_is_one_line_not_a_minute_of_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match=r"^nope-org/no-such-model: not a local folder.*HF_HUB_OFFLINE is set"):
        base.resolve("nope-org/no-such-model", str(tmp_path))


def test_an_unreachable_hub_ends_the_cli_at_once_with_exit_2(chat_data, tmp_path, monkeypatch, capsys):
    import socket
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with socket.socket() as s:  # a port that was free a moment ago: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    began = time.monotonic()
    code = main(
        [
            "sft",
            "--model",
            "deepseek-ai/deepseek-coder-1.3b-base",
            "--data",
            chat_data,
            "--output",
            str(tmp_path / "o"),
            "--no-tracking",
            "--max-steps",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - began < 10
    assert "deepseek-ai/deepseek-coder-1.3b-base: not a local folder" in err and f"127.0.0.1:{port}" in err
    assert not os.path.exists(tmp_path / "o" / "model")


def test_base_data_and_output_on_s3_with_a_resume(s3_endpoint, tiny_model_dir, tmp_path):
    io.s3_client().create_bucket(Bucket="lake")
    io.upload_dir(tiny_model_dir, "s3://lake/models/base")
    io.upload_dir(write_synth(tmp_path / "synth", conversations()), "s3://lake/synth")
    out = "s3://lake/runs/1/sft"
    with pytest.raises(SftInterrupted):
        sft(SftConfig(**SHORT), "s3://lake/models/base", "s3://lake/synth", out, SigtermAtStep(2))
    assert complete_steps(out) == [3]  # uploaded, then marked complete
    stats = sft(SftConfig(**SHORT), "s3://lake/models/base", "s3://lake/synth", out)
    assert stats["resumed_from_step"] == 3 and stats["steps"] == 8
    assert complete_steps(out) == [4, 8]  # older ones pruned on S3 too (keep_checkpoints 2)
    assert io.read_json(io.join(out, "stats.json"))["examples"] == stats["examples"]
    for name in (
        "model/config.json",
        "model/tokenizer_config.json",
        "model/model.safetensors",
        "report.md",
        "loss_curve.png",
        "quarantine/examples.parquet",
    ):
        assert io.exists(io.join(out, name)), name
    local = io.download_dir(io.join(out, "model"), str(tmp_path / "model"))
    assert AutoTokenizer.from_pretrained(local).chat_template


@pytest.fixture()
def registry_uri(tmp_path, tiny_model_dir) -> str:
    """A sqlite MLflow store whose registry has the tiny model as codemill-base@champion."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with stage_run("serve", uri=uri) as tracker:
        tracker.log_artifacts(tiny_model_dir, "model")
        source = tracker.client.get_run(tracker.run_id).info.artifact_uri + "/model"
        version = registry.register(tracker.client, tracker.run_id, source, "codemill-base")
    registry.move_alias(registry.client_for(uri), "codemill-base", "champion", version)
    return uri


def test_a_registry_base_and_what_mlflow_records(registry_uri, tmp_path, capsys):
    folder = write_synth(tmp_path / "synth", conversations())
    out = str(tmp_path / "out")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SHORT.items()]
    code = main(
        [
            "sft",
            "--model",
            "models:/codemill-base@champion",
            "--data",
            folder,
            "--output",
            out,
            "--tracking-uri",
            registry_uri,
            *flags,
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["examples"] == json.load(open(os.path.join(out, "stats.json")))["examples"]

    client = MlflowClient(registry_uri)
    run = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("codemill").experiment_id])
        if r.info.run_name == "sft"
    )
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == str(SHORT["lr"]) and run.data.params["preset"] == "tiny"
    assert run.data.params["warmup_ratio"] == "0.05"  # the resolved config: the preset's value, not None
    assert {"train_loss_start", "val_loss", "assistant_token_fraction", "tokens_per_second"} <= set(run.data.metrics)
    curve = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in curve] == [1, 2, 4, 6, 8]  # the loss curve, step by step
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) >= 2
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"loss_curve.png", "report.md", "model"} <= artifacts


def test_an_unknown_registry_alias_is_one_line(registry_uri, tmp_path, capsys):
    folder = write_synth(tmp_path / "synth", conversations())
    code = main(
        [
            "sft",
            "--model",
            "models:/codemill-base@nobody",
            "--data",
            folder,
            "--output",
            str(tmp_path / "out"),
            "--tracking-uri",
            registry_uri,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "models:/codemill-base@nobody: not found" in err[0]

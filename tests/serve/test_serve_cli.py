"""`codemill serve` and `codemill rollout` as command lines."""

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest

from codemill.serve import cli
from codemill.serve.config import ServeConfig
from codemill.serve.rollout import RolloutConfig
from codemill.stage import InputError, config_from_args, log_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codemill")
    cli.register(p.add_subparsers(dest="command", required=True))
    return p


def test_every_config_field_is_a_flag():
    p = parser()
    assert p.parse_args(["serve"]).func is cli.cmd_serve  # every serve flag is optional
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices
    serve_flags = {a.dest for a in sub["serve"]._actions}
    rollout_flags = {a.dest for a in sub["rollout"]._actions}
    assert {f.name for f in dataclasses.fields(ServeConfig)} <= serve_flags
    assert {f.name for f in dataclasses.fields(RolloutConfig)} - {"gate"} <= rollout_flags
    assert "gate_json" in rollout_flags


def test_flags_build_the_config():
    args = parser().parse_args(
        [
            "serve",
            "--model",
            "models:/codemill@champion",
            "--no-batching",
            "--max-batch",
            "4",
            "--batch-wait-ms",
            "2.5",
            "--backend",
            "vllm",
            "--api-key-env",
            "MY_KEY",
            "--port",
            "9000",
        ]
    )
    config = config_from_args(ServeConfig, args)
    assert (
        config.model,
        config.batching,
        config.max_batch,
        config.batch_wait_ms,
        config.backend,
        config.api_key_env,
        config.port,
    ) == ("models:/codemill@champion", False, 4, 2.5, "vllm", "MY_KEY", 9000)
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--backend", "onnx"])


def test_api_key_comes_from_the_environment_and_is_never_logged(monkeypatch, capsys):
    monkeypatch.setenv("MY_KEY", "s3cret")
    assert ServeConfig(api_key_env="MY_KEY").resolved_api_key() == "s3cret"
    assert ServeConfig(api_key_env="UNSET_VAR_FOR_TEST").resolved_api_key() == ""
    config = ServeConfig(api_key="flag-key")
    log_config("serve", config.redacted())
    logged = capsys.readouterr().out
    assert '"api_key": "***"' in logged and "flag-key" not in logged
    assert config.resolved_api_key() == "flag-key"


def test_rollout_command_with_failing_gate(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "eval").mkdir()
    (tmp_path / "train").mkdir()
    (tmp_path / "eval" / "metrics.json").write_text(json.dumps({"humaneval": {"pass@1": 0.01}}))
    (tmp_path / "train" / "stats.json").write_text(json.dumps({"val_loss_start": 3.0, "val_loss_end": 2.0}))
    base = [
        "rollout",
        "--model",
        tiny_model_dir,
        "--eval",
        str(tmp_path / "eval"),
        "--train",
        str(tmp_path / "train"),
        "--output",
        str(tmp_path / "out"),
        "--no-tracking",
    ]
    args = parser().parse_args(base + ["--gate", '{"humaneval.pass@1": {"min": 0.1}}'])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "[serve] not rolled out, serving left as it was: humaneval.pass@1 = 0.01 fails >= 0.1 (min)" in out
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["gate"]["passed"] is False
    bad = parser().parse_args(base + ["--gate", "{oops"])
    with pytest.raises(InputError, match="--gate: not valid JSON"):
        bad.func(bad)


def test_serve_command_reports_bad_model_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "codemill.serve.cli", "--model", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing'}: no such model directory"


def test_server_exits_nonzero_when_the_model_cannot_load(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # looks like a model directory, is not one
    result = subprocess.run(
        [sys.executable, "-m", "codemill.serve.cli", "--model", str(tmp_path), "--port", "0", "--no-access-log"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1
    assert "model failed to load or to generate" in result.stderr

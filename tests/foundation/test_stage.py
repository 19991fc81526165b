"""Config dataclasses become CLI flags; shard markers; stats flattening."""

import argparse
from dataclasses import dataclass, field

import pytest

from codemill import stage


@dataclass
class DemoConfig:
    max_repos: int = field(default=10, metadata={"help": "how many"})
    threshold: float = field(default=0.7, metadata={"help": "jaccard"})
    names: list[str] = field(default_factory=list, metadata={"help": "filters"})
    strict: bool = field(default=False, metadata={"help": "fail closed"})
    tokenizer: str | None = field(default=None, metadata={"help": "path"})


def test_config_flags_roundtrip():
    p = argparse.ArgumentParser()
    stage.add_config_args(p, DemoConfig)
    assert "how many (default: 10)" in p.format_help()
    cfg = stage.config_from_args(DemoConfig, p.parse_args(["--max-repos", "3", "--names", "a", "b", "--strict"]))
    assert cfg == DemoConfig(max_repos=3, names=["a", "b"], strict=True)
    assert stage.config_from_args(DemoConfig, p.parse_args([])) == DemoConfig()
    with pytest.raises(SystemExit):
        p.parse_args(["--threshold", "high"])


def test_shard_markers(tmp_path):
    out = str(tmp_path)
    with pytest.raises(stage.InputError):
        stage.check_shard(2, 2)
    stage.mark_shard_done(out, "validate", 0, 2, {"kept": 1})
    assert stage.shard_done(out, "validate", 0, 2) and not stage.shard_done(out, "validate", 1, 2)
    with pytest.raises(RuntimeError, match=r"shards \[1\] of 2"):
        stage.read_shard_stats(out, "validate", 2)
    stage.mark_shard_done(out, "validate", 1, 2, {"kept": 2})
    assert [s["kept"] for s in stage.read_shard_stats(out, "validate", 2)] == [1, 2]


def test_numeric_metrics_flatten():
    stats = {"kept": 3, "ok": True, "by_reason": {"too_large": 2}, "name": "x"}
    assert stage.numeric_metrics(stats) == {"kept": 3.0, "ok": 1.0, "by_reason.too_large": 2.0}

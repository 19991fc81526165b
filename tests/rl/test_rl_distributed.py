"""Two ranks under torchrun (gloo on CPU): each samples its share, gradients are averaged,
rank 0 writes every rank's rollouts."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest


@pytest.mark.slow
def test_two_ranks_share_the_steps(line_model, problems_file, tmp_path):
    output = str(tmp_path / "rl")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "codemill.cli",
        "rl",
        "--model",
        line_model,
        "--problems",
        problems_file,
        "--decontaminate",
        "humaneval",
        "--output",
        output,
        "--max-steps",
        "2",
        "--num-generations",
        "4",
        "--prompts-per-step",
        "2",
        "--max-completion-tokens",
        "1",
        "--no-mask-truncated",
        "--lr",
        "0.01",
        "--eval-every",
        "0",
        "--num-threads",
        "1",
        "--no-tracking",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.load(open(f"{output}/stats.json"))
    assert stats["world_size"] == 2 and stats["steps"] == 2 and stats["groups"] == 4
    rows = pq.read_table(f"{output}/rollouts/step-00000001.parquet").to_pylist()
    assert len(rows) == 2 * 4 and len({r["task_id"] for r in rows}) == 2  # both ranks' groups

"""Fixtures for the rl tests: line-token models (tests/rl/line_model.py), stdin/stdout
problems, and mined-style tasks written in the tasks stage's output layout."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from tests.rl.line_model import TASK_LINES, build_model, write_problems


@pytest.fixture(scope="session")
def line_model(tmp_path_factory) -> str:
    return build_model(str(tmp_path_factory.mktemp("line-model")))


@pytest.fixture(scope="session")
def task_model(tmp_path_factory) -> str:
    return build_model(str(tmp_path_factory.mktemp("task-model")), lines=TASK_LINES)


@pytest.fixture(scope="session")
def problems_file(tmp_path_factory) -> str:
    return write_problems(str(tmp_path_factory.mktemp("problems") / "problems.jsonl"), ["plus-one", "twice"])


def _task(
    kind: str, name: str, reference: str, prompt: str, tests: list[tuple[str, str]], answer: str, split: str = "train"
) -> dict:
    return {
        "task_id": f"{kind}/{name}-000000000000",
        "kind": kind,
        "repo": "octo/mined",
        "path": "src/ops.py",
        "entry_point": name,
        "prompt": prompt,
        "reference": reference,
        "tests": json.dumps([{"input": i, "output": o} for i, o in tests]),
        "answer": answer,
        "split": split,
        "language": "python",
    }


def mined_tasks() -> list[dict]:
    """One task of each kind, as the tasks stage writes them (codemill.tasks.kinds.build_tasks)."""
    from codemill.tasks.kinds import INPUT_INSTRUCTION, OUTPUT_INSTRUCTION

    inc = 'def inc(x):\n    """Return x plus one."""\n    return x + 1\n'
    dbl = "def dbl(x):\n    return x * 2\n"
    dec = "def dec(x):\n    return x - 1\n"
    return [
        _task(
            "generate",
            "inc",
            inc,
            'def inc(x):\n    """Return x plus one."""\n',
            [("1", "2"), ("5", "6")],
            "    return x + 1\n",
        ),
        _task("output", "dbl", dbl, f"{dbl}\n{OUTPUT_INSTRUCTION}\nassert dbl(2) == ??\n", [("2", "4")], "4"),
        _task("input", "dec", dec, f"{dec}\n{INPUT_INSTRUCTION}\nassert dec(??) == 3\n", [("4", "3")], "4"),
        _task(
            "generate",
            "twice",
            dbl,
            'def twice(x):\n    """Return twice x."""\n',
            [("1", "2"), ("3", "6")],
            "    return x * 2\n",
            split="heldout",
        ),
    ]


@pytest.fixture(scope="session")
def tasks_dir(tmp_path_factory) -> str:
    from codemill import io
    from codemill.tasks.kinds import TASK_SCHEMA

    root = str(tmp_path_factory.mktemp("tasks-out"))
    rows = mined_tasks()
    for split in ("train", "heldout"):
        part = [r for r in rows if r["split"] == split]
        table = pa.Table.from_pylist(part, schema=TASK_SCHEMA)
        io.write_parquet(table, os.path.join(root, "tasks", f"{split}.parquet"))
    return root


def fast_config(**extra):
    """Settings that keep a CPU run to seconds: one-token completions of the line models."""
    from codemill.rl.config import RLConfig

    values = dict(
        max_steps=3,
        num_generations=6,
        prompts_per_step=2,
        max_completion_tokens=1,
        mask_truncated=False,
        lr=1e-2,
        eval_every=2,
        eval_generations=2,
        checkpoint_every=0,
        workers=2,
        num_threads=1,
        decontaminate=["humaneval"],
        fit_min_points=3,
    )
    values.update(extra)
    return RLConfig(**values)

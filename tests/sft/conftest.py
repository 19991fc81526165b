"""SFT fixtures: chat data in synth's layout, tasks in the tasks stage's layout, fast settings."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from codemill import io

# Short, distinct answers a 2-layer model can learn in a few dozen steps.
QA = [
    ("Name a prime number.", "7 is prime."),
    ("Say hi.", "hi there"),
    ("Add 2 and 3.", "2 + 3 = 5"),
    ("Reverse abc.", "cba"),
    ("Which language is this project in?", "Python."),
    ("Capital of France?", "Paris"),
    ("Count to three.", "1 2 3"),
    ("Opposite of up?", "down"),
]
SYSTEM = "You are a terse assistant."


def conversations(n_copies: int = 1) -> list[list[dict]]:
    rows = []
    for q, a in QA * n_copies:
        rows.append(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        )
    return rows


def write_synth(folder, rows: list, name: str = "part-00000.parquet") -> str:
    """synth's output contract: data/*.parquet with a messages column (list of {role, content})."""
    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    table = pa.table({"messages": pa.array(rows, type=messages), "task_id": [f"synth-{i}" for i in range(len(rows))]})
    io.write_parquet(table, str(folder / "data" / name))
    return str(folder)


def write_tasks(folder, tasks: list[dict]) -> str:
    """The tasks stage's output contract (issue 13): tasks/*.parquet."""
    cols = (
        "task_id",
        "kind",
        "repo",
        "path",
        "entry_point",
        "prompt",
        "reference",
        "tests",
        "answer",
        "split",
        "language",
    )
    table = pa.table({c: [str(t.get(c, "")) for t in tasks] for c in cols})
    io.write_parquet(table, str(folder / "tasks" / "shard-00000-of-00001.parquet"))
    return str(folder)


def generate_task(i: int, split: str = "train") -> dict:
    return {
        "task_id": f"t{i}",
        "kind": "generate",
        "entry_point": f"f{i}",
        "split": split,
        "prompt": f'def f{i}(x):\n    """Return x plus {i}."""\n',
        "reference": f"def f{i}(x):\n    return x + {i}\n",
        "tests": json.dumps([{"input": "1", "output": str(1 + i)}]),
        "language": "python",
    }


def fast(**overrides) -> dict:
    """Settings small enough for 2 shared cores; learning still visible."""
    options = dict(
        preset="tiny",
        max_steps=30,
        lr=3e-3,
        batch_size=4,
        seq_len=128,
        eval_steps=15,
        logging_steps=5,
        save_steps=15,
        eval_fraction=0.0,
        num_threads=1,
    )
    options.update(overrides)
    return options


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory) -> str:
    return write_synth(tmp_path_factory.mktemp("synth"), conversations())

"""Inputs: synth's messages and tasks' generate tasks become examples; bad rows are quarantined, bad files named."""

from __future__ import annotations

import pyarrow as pa
import pytest

from codemill import io
from codemill.cli import main
from codemill.sft import data
from codemill.stage import InputError
from tests.sft.conftest import conversations, generate_task, write_synth, write_tasks

BAD = [
    ([], "empty_messages"),
    ([{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "x"}], "unknown_role"),
    ([{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}], "bad_content"),
    ([{"role": "user", "content": "hi"}], "no_assistant"),
    (
        [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "assistant", "content": "c"}],
        "misplaced_system",
    ),
]


def test_bad_rows_are_quarantined_and_counts_add_up(tmp_path):
    good = conversations()
    folder = write_synth(tmp_path, good + [rows for rows, _ in BAD])
    loaded = data.load(folder, eval_fraction=0.25, seed=0)
    assert sorted(q["reason"] for q in loaded.quarantine) == sorted(reason for _, reason in BAD)
    assert all(q["source"].startswith(str(tmp_path)) and "#" in q["source"] for q in loaded.quarantine)
    assert loaded.rows == len(good) + len(BAD) == len(loaded.train) + len(loaded.val) + len(loaded.quarantine)
    assert loaded.val and loaded.train


def test_the_held_out_share_is_seeded_and_order_independent(tmp_path):
    rows = conversations()
    a = data.load(write_synth(tmp_path / "a", rows), 0.3, seed=1)
    b = data.load(write_synth(tmp_path / "b", rows[::-1]), 0.3, seed=1)
    c = data.load(write_synth(tmp_path / "c", rows), 0.3, seed=2)
    key = lambda examples: sorted(e.messages[1]["content"] for e in examples)  # noqa: E731
    assert key(a.val) == key(b.val) and key(a.train) == key(b.train)
    assert key(a.val) != key(c.val)


def test_generate_tasks_become_chat_turns_and_keep_their_split(tmp_path):
    output_task = {**generate_task(5), "kind": "output", "answer": "6"}
    folder = write_tasks(tmp_path, [generate_task(1), generate_task(2, "heldout"), output_task])
    loaded = data.load(folder, eval_fraction=0.0, seed=0)
    assert [e.messages for e in loaded.train] == [
        [
            {"role": "user", "content": generate_task(1)["prompt"]},
            {"role": "assistant", "content": "```python\ndef f1(x):\n    return x + 1\n```"},
        ]
    ]
    assert len(loaded.val) == 1 and loaded.val[0].messages[0]["content"].startswith("def f2(x)")
    assert loaded.unused_task_kinds == {"output": 1} and loaded.rows == 2


def test_several_folders_are_read_together(tmp_path):
    synth = write_synth(tmp_path / "synth", conversations())
    tasks = write_tasks(tmp_path / "tasks", [generate_task(i) for i in range(3)])
    loaded = data.load(f"{synth},{tasks}", eval_fraction=0.0, seed=0)
    assert len(loaded.train) == len(conversations()) + 3


def test_a_file_without_the_columns_is_a_one_line_error_naming_it(tmp_path, capsys, tiny_model_dir):
    url = str(tmp_path / "data" / "part-0.parquet")
    io.write_parquet(pa.table({"text": ["hello"]}), url)
    with pytest.raises(InputError, match=f"{url}: expected a 'messages' column"):
        data.load(str(tmp_path), 0.1, 0)
    code = main(
        ["sft", "--model", tiny_model_dir, "--data", str(tmp_path), "--output", str(tmp_path / "out"), "--no-tracking"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and url in err[0]


def test_a_folder_without_parquet_is_named(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: no data/\\*.parquet"):
        data.load(str(tmp_path), 0.1, 0)


def test_only_bad_rows_is_an_error_not_an_empty_model(tmp_path, tiny_model_dir, capsys):
    folder = write_synth(tmp_path, [rows for rows, _ in BAD])
    code = main(
        ["sft", "--model", tiny_model_dir, "--data", folder, "--output", str(tmp_path / "out"), "--no-tracking"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no usable training examples (5 quarantined: " in err
    for _, reason in BAD:  # the error says why, so the user can act on it
        assert f"{reason} 1" in err


def test_only_too_long_rows_names_the_reason_and_the_flag(tmp_path, tiny_model_dir, capsys):
    long_chat = [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}]
    folder = write_synth(tmp_path, [long_chat, long_chat])
    code = main(
        [
            "sft",
            "--model",
            tiny_model_dir,
            "--data",
            folder,
            "--output",
            str(tmp_path / "out"),
            "--no-tracking",
            "--seq-len",
            "64",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "no usable training examples (2 quarantined: too_long 2; raise --seq-len)" in err[0]

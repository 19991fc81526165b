"""What rl trains on: tasks rows, problems in both layouts, decontamination counted, bad input named."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from codemill import io
from codemill.evaluate import stdio
from codemill.rl import data
from codemill.rl.config import RLConfig
from codemill.stage import InputError
from tests.rl.line_model import write_problems


def test_tasks_train_and_heldout_splits_and_kinds(tasks_dir):
    loaded, quarantine = data.load(RLConfig(problems=""), tasks_dir)
    assert [t.task_id for t in loaded.train] == [
        "generate/inc-000000000000",
        "input/dec-000000000000",
        "output/dbl-000000000000",
    ]
    assert [t.task_id for t in loaded.heldout] == ["generate/twice-000000000000"]
    assert quarantine == [] and "problems" not in loaded.stats
    only_output, _ = data.load(RLConfig(kinds=["output"]), tasks_dir)
    assert [t.kind for t in only_output.train] == ["output"]
    assert only_output.stats["tasks"]["other_kinds"] == 3


def test_a_task_row_with_unreadable_tests_is_quarantined(tasks_dir, tmp_path):
    from codemill.tasks.kinds import TASK_SCHEMA

    rows = io.read_parquet(io.join(tasks_dir, "tasks", "train.parquet")).to_pylist()
    rows[0]["tests"] = "not json"
    io.write_parquet(pa.Table.from_pylist(rows, schema=TASK_SCHEMA), str(tmp_path / "tasks" / "train.parquet"))
    loaded, quarantine = data.load(RLConfig(), str(tmp_path))
    assert len(loaded.train) == 2 and loaded.stats["tasks"]["quarantined"] == 1
    assert quarantine[0]["reason"] == "unreadable_task" and "train.parquet" in quarantine[0]["source"]


def test_problems_in_both_layouts_give_the_same_cases(tmp_path):
    lcb = write_problems(str(tmp_path / "lcb.jsonl"), ["plus-one"], per_op=1, cases=3)
    rstar = write_problems(str(tmp_path / "rstar.jsonl"), ["plus-one"], per_op=1, cases=3, layout="rstar")
    a, _ = data.load(RLConfig(problems=lcb, decontaminate=[]), None)
    b, _ = data.load(RLConfig(problems=rstar, decontaminate=[]), None)
    assert a.train[0].problem.cases == b.train[0].problem.cases == [("2\n", "3\n"), ("3\n", "4\n"), ("4\n", "5\n")]


def test_bundled_problems_are_the_default_and_not_decontaminated_against_themselves():
    loaded, quarantine = data.load(RLConfig(), None)
    stats = loaded.stats["problems"]
    assert stats["file"] == stdio.SHIPPED_PROBLEMS and stats["kept"] == 13 and loaded.stats["train_prompts"] == 13
    assert stats["decontaminated_against"] == ["humaneval"] and "stdio" in stats["decontamination_skipped"]


def test_problems_copied_from_the_evaluation_sets_are_dropped_and_counted(tmp_path):
    import gzip

    from codemill.validate.decontam import humaneval_path

    first = json.loads(gzip.decompress(open(humaneval_path(), "rb").read()).decode().splitlines()[0])
    bundled = json.loads(open(stdio.SHIPPED_PROBLEMS, encoding="utf-8").readline())
    path = write_problems(str(tmp_path / "p.jsonl"), ["plus-one", "twice"], per_op=1)
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    words = first["prompt"].split()
    rewrapped = "\n".join(" ".join(words[i : i + 4]) for i in range(0, len(words), 4))  # no line holds 10 tokens
    rows.append({**rows[0], "question_id": "copied-humaneval", "question_content": rewrapped})
    rows.append({**bundled, "question_id": "copied-stdio"})
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    loaded, quarantine = data.load(RLConfig(problems=path), None)
    assert sorted(t.task_id for t in loaded.train) == ["plus-one-0", "twice-0"]
    stats = loaded.stats["problems"]
    assert (stats["read"], stats["contaminated"], stats["kept"]) == (4, 2, 2)
    assert sorted(q["detail"].split(":")[0] for q in quarantine) == ["copied-humaneval", "copied-stdio"]
    assert {q["reason"] for q in quarantine} == {"contaminated"}


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no tasks"):
        data.load(RLConfig(), str(tmp_path))
    with pytest.raises(InputError, match="not found"):
        data.load(RLConfig(problems=str(tmp_path / "missing.jsonl")), None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "x", "question": "no cases"}\nnot json\n')
    with pytest.raises(InputError, match="no usable"):
        data.load(RLConfig(problems=str(bad), decontaminate=[]), None)


def test_problems_from_s3(s3_endpoint, problems_file):
    io.s3_client().create_bucket(Bucket="probs")
    io.write_bytes("s3://probs/p.jsonl", open(problems_file, "rb").read())
    loaded, _ = data.load(RLConfig(problems="s3://probs/p.jsonl", decontaminate=[]), None)
    assert len(loaded.train) == 4 and loaded.stats["problems"]["file"] == "s3://probs/p.jsonl"

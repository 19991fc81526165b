"""The tasks stage on the held-out-style corpus: every function ends where it should, the
outputs keep the contract, and the same input and seed give the same bytes."""

from __future__ import annotations

import glob
import json
import os

import pyarrow.parquet as pq
import pytest
from tasks_corpus import EXPECTED, VENDORED, write_corpus

from codemill import runner
from codemill.tasks import TasksConfig

CONFIG = dict(timeout=2.0, workers=2)


def mine(input: str, output: str, world_size: int = 1, **settings) -> dict:
    config = TasksConfig(**{**CONFIG, **settings})
    for rank in range(world_size):
        runner.run("tasks-shard", config, output=output, rank=rank, world_size=world_size, input=input)
    return runner.run("tasks-finish", config, output=output, world_size=world_size)


def quarantine(output: str) -> list[dict]:
    return [
        row
        for f in sorted(glob.glob(os.path.join(output, "quarantine", "*.parquet")))
        for row in pq.read_table(f).to_pylist()
    ]


def tasks(output: str) -> list[dict]:
    return [
        row
        for f in sorted(glob.glob(os.path.join(output, "tasks", "*.parquet")))
        for row in pq.read_table(f).to_pylist()
    ]


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    corpus = write_corpus(str(root / "corpus"))
    stats = mine(corpus, str(root / "out"))
    return corpus, str(root / "out"), stats


def test_every_function_ends_with_its_reason(mined):
    _, out, stats = mined
    reasons = {(q["repo"], q["entry_point"]): q["reason"] for q in quarantine(out)}
    kept = {t["entry_point"] for t in tasks(out)}
    for name, reason in EXPECTED.items():
        if reason is None:
            assert name in kept, name
        else:
            assert reason in {r for (_, n), r in reasons.items() if n == name}, (name, reasons)
            assert name not in kept
    assert reasons[("beta/vendor", VENDORED)] == "duplicate"
    assert stats["candidates"] == len(EXPECTED) + 1  # the vendored copy
    assert stats["candidates"] == stats["functions_kept"] + stats["quarantined"]
    assert stats["functions_kept"] == sum(r is None for r in EXPECTED.values())
    assert sum(stats["by_reason"].values()) == stats["quarantined"] == len(quarantine(out))


def test_stats_and_kinds(mined):
    _, out, stats = mined
    # double's doctest is wrong: no generate task for it (its prompt would contradict its tests)
    assert stats["tasks"] == 3 * stats["functions_kept"] - 1 == len(tasks(out))
    assert stats["by_kind"] == {"generate": 3, "input": 4, "output": 4}
    assert stats["generate_skipped_wrong_doctest"] == 1
    # double's doctest says 5 and test_core asserts clamp(5, high=3) == 4: both wrong
    assert stats["examples_disagreeing"] == 2
    on_disk = json.load(open(os.path.join(out, "stats.json")))
    for key in ("candidates", "functions_kept", "quarantined", "tasks", "by_kind", "by_reason", "examples_disagreeing"):
        assert on_disk[key] == stats[key]
    report = open(os.path.join(out, "report.md")).read()
    for kind in ("generate", "output", "input"):
        assert f"## {kind} tasks" in report and f"`{kind}/" in report


def test_expected_outputs_come_from_running_the_reference(mined):
    _, out, _ = mined
    by_id = {t["task_id"]: t for t in tasks(out)}
    clamp = next(t for t in by_id.values() if t["entry_point"] == "clamp" and t["kind"] == "generate")
    cases = {c["input"]: c["output"] for c in json.loads(clamp["tests"])}
    assert cases == {"-3, low=-2, high=2": "-2", "15": "10", "5, high=3": "3"}  # not the asserted 4
    double = next(t for t in by_id.values() if t["entry_point"] == "double" and t["kind"] == "output")
    assert double["answer"] == "4" and "assert double(2) == ??" in double["prompt"]
    for task in by_id.values():  # an output/input prompt never shows its doctests (they would give the answer away)
        assert (">>>" in task["prompt"]) == (task["kind"] == "generate" and ">>>" in task["reference"])
    scale = next(t for t in by_id.values() if t["entry_point"] == "scale" and t["kind"] == "input")
    assert scale["answer"] in ("2, factor=3", "[1], factor=2")
    assert clamp["reference"].startswith("LIMIT = 10") and clamp["repo"] == "alpha/mathy"
    assert clamp["prompt"].rstrip().endswith('"""') and "return max" not in clamp["prompt"]
    assert {t["split"] for t in by_id.values()} <= {"train", "heldout"}
    assert all(t["language"] == "python" for t in by_id.values())


def test_readable_with_datasets(mined):
    from datasets import load_dataset

    _, out, _ = mined
    data = load_dataset("parquet", data_files={"train": os.path.join(out, "tasks", "*.parquet")}, split="train")
    assert data.num_rows == len(tasks(out))
    assert {
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
    } <= set(data.column_names)
    held = load_dataset("parquet", data_files={"q": os.path.join(out, "quarantine", "*.parquet")}, split="q")
    assert {"entry_point", "repo", "path", "reason", "detail"} <= set(held.column_names)


def _files(out: str) -> dict[str, bytes]:
    paths = sorted(
        glob.glob(os.path.join(out, "tasks", "*.parquet"))
        + glob.glob(os.path.join(out, "quarantine", "*"))
        + [os.path.join(out, "report.md")]
    )
    return {os.path.relpath(p, out): open(p, "rb").read() for p in paths}


def test_same_input_and_seed_give_the_same_bytes(mined, tmp_path):
    corpus, out, _ = mined
    mine(corpus, str(tmp_path / "again"))
    assert _files(out) == _files(str(tmp_path / "again"))
    mine(corpus, str(tmp_path / "seeded"), seed=7, heldout_fraction=0.5)
    assert tasks(str(tmp_path / "seeded")) != tasks(out)  # the seed moves the split and the shown cases


def test_sharding_by_repository_gives_the_same_tasks(mined, tmp_path):
    corpus, out, stats = mined
    sharded = mine(corpus, str(tmp_path / "two"), world_size=2)
    assert tasks(str(tmp_path / "two")) == tasks(out)
    assert {k: sharded[k] for k in ("candidates", "functions_kept", "by_reason")} == {
        k: stats[k] for k in ("candidates", "functions_kept", "by_reason")
    }


def test_max_tasks_and_kinds(mined, tmp_path):
    corpus, _, _ = mined
    stats = mine(corpus, str(tmp_path / "few"), kinds=["output", "input"], max_tasks=5)  # 2 functions fit
    assert stats["tasks"] == 4 and set(stats["by_kind"]) == {"output", "input"}
    assert stats["by_reason"]["over_limit"] == 2
    assert stats["candidates"] == stats["functions_kept"] + stats["quarantined"]

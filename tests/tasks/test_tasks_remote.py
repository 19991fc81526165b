"""``codemill eval --benchmark tasks --sandbox-url``: mined tasks scored on the sandbox
service write the same results.jsonl and metrics.json as scoring in-process, and so does the
held-out tasks benchmark of ``codemill eval --model`` (``codemill.evaluate.mined``)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from tasks_corpus import write_corpus
from test_tasks_stage import mine

from codemill import io
from codemill.cli import main
from codemill.evaluate import mined
from codemill.evaluate.config import EvalConfig
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.tasks.score import load_tasks
from codemill.verify.server import ServerConfig, serve

KEY = "tasks-remote-key"


@pytest.fixture(scope="module")
def mined_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    mine(write_corpus(str(root / "corpus")), str(root / "tasks"))
    return str(root / "tasks")


@pytest.fixture(scope="module")
def service():
    with Sandbox(Limits(timeout=3.0)) as sandbox:
        server = serve(ServerConfig(KEY, workers=2, timeout=3.0), sandbox, "127.0.0.1", 0, ready=lambda s: None)
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def _rows(tasks) -> list[dict]:
    rows = [{"task_id": t.task_id, "completion": t.answer} for t in tasks]
    rows += [
        {"task_id": t.task_id, "completion": "    return None\n" if t.kind == "generate" else "None"} for t in tasks
    ]
    # right on some cases only (a fraction between 0 and 1), and one that does not parse
    rows += [
        {"task_id": t.task_id, "completion": f"    return {t.tests[0][1]}\n"} for t in tasks if t.kind == "generate"
    ]
    return rows + [{"task_id": tasks[0].task_id, "completion": "```python\ndef (:\n```"}]


def test_eval_tasks_on_the_service_writes_what_in_process_writes(mined_tasks, service, tmp_path, monkeypatch):
    tasks = load_tasks(mined_tasks)
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in _rows(tasks)))
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", KEY)
    for name, extra in (("local", []), ("remote", ["--sandbox-url", service])):
        assert (
            main(
                [
                    "eval",
                    "--samples",
                    str(samples),
                    "--benchmark",
                    "tasks",
                    "--tasks",
                    mined_tasks,
                    "--output",
                    str(tmp_path / name),
                    "--workers",
                    "2",
                    "--no-tracking",
                    *extra,
                ]
            )
            == 0
        )
    for name in ("results.jsonl", "metrics.json"):
        assert (tmp_path / "remote" / name).read_text() == (tmp_path / "local" / name).read_text()
    fractions = {json.loads(line)["fraction"] for line in (tmp_path / "remote" / "results.jsonl").open()}
    assert any(0 < f < 1 for f in fractions)
    stats = json.loads((tmp_path / "remote" / "stats.json").read_text())
    assert stats["sandbox"]["service"] == service


def _all_heldout(mined_tasks: str, folder) -> str:
    """The mined tasks again, every one in the held-out split (the small corpus holds out none)."""
    import glob

    import pyarrow.parquet as pq

    for number, path in enumerate(sorted(glob.glob(f"{mined_tasks}/tasks/*.parquet"))):
        table = pq.read_table(path)
        table = table.set_column(
            table.schema.get_field_index("split"),
            "split",
            pa.array(["heldout"] * table.num_rows, table.schema.field("split").type),
        )
        io.write_parquet(table, str(folder / "tasks" / f"part-{number}.parquet"))
    return str(folder)


def test_heldout_tasks_benchmark_on_the_service(mined_tasks, service, tmp_path, monkeypatch):
    mined_tasks = _all_heldout(mined_tasks, tmp_path / "heldout")
    heldout = mined.load_heldout(mined_tasks)
    assert heldout
    lines = [
        {"benchmark": "tasks", "task_id": r["task_id"], "completion": r["completion"]}
        for r in _rows(heldout)
        if r["task_id"] in {t.task_id for t in heldout}
    ]
    out = str(tmp_path / "eval")
    io.write_text(io.join(out, "samples", "tasks.jsonl"), "".join(json.dumps(r) + "\n" for r in lines))
    generation = {"benchmarks": {"tasks": {"url": mined_tasks}}}
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", KEY)
    local = mined.score(EvalConfig(workers=2), out, generation)
    monkeypatch.setattr("codemill.evaluate.sandbox.Sandbox", None)  # no sandbox in this process now
    remote = mined.score(EvalConfig(workers=2, sandbox_url=service), out, generation)
    assert remote == local and len(remote[1]) == len(lines)
    assert {r.passed for r in remote[1]} == {True, False}

"""``--sandbox-url``: scoring sends every execution to the sandbox service and writes the
same results.jsonl as scoring in-process."""

import json
import os

import pytest

from codemill.evaluate import EvalConfig, score_samples
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.stage import InputError
from codemill.verify.server import ServerConfig, serve
from tests.evaluate.conftest import write_samples
from tests.evaluate.humaneval_hacks import completion as hack


@pytest.fixture(scope="module")
def service():
    with Sandbox(Limits(timeout=5.0)) as sandbox:
        server = serve(ServerConfig("remote-key", workers=2), sandbox, "127.0.0.1", 0, ready=lambda s: None)
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


@pytest.mark.parametrize("benchmark", ["humaneval", "stdio"])
def test_remote_scoring_writes_what_local_scoring_writes(tmp_path, problems, tracker, service, monkeypatch, benchmark):
    if benchmark == "humaneval":
        rows = [
            {"task_id": p["task_id"], "completion": c}
            for p in problems[:3]
            for c in (p["canonical_solution"], hack("always_equal"))
        ]
    else:
        rows = [json.loads(line) for line in open("codemill/evaluate/data/stdio_solutions.jsonl")][:3]
        rows += [dict(r, completion="print(0)\n") for r in rows]
    path = write_samples(tmp_path / "s.jsonl", rows)
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", "remote-key")
    local = score_samples(EvalConfig(workers=2, limit=3), path, benchmark, str(tmp_path / "local"), tracker)
    remote = score_samples(
        EvalConfig(workers=2, limit=3, sandbox_url=service), path, benchmark, str(tmp_path / "remote"), tracker
    )
    assert remote[benchmark] == local[benchmark] and local[benchmark]["given"]["pass@1"] == 0.5
    assert remote["sandbox"]["service"] == service and remote["sandbox"]["missing"] == []
    for name in ("results.jsonl", "metrics.json"):
        assert open(tmp_path / "remote" / name).read() == open(tmp_path / "local" / name).read()


def test_remote_scoring_needs_the_key(tmp_path, problems, tracker, service, monkeypatch):
    monkeypatch.delenv("CODEMILL_SANDBOX_API_KEY", raising=False)
    path = write_samples(tmp_path / "s.jsonl", [{"task_id": problems[0]["task_id"], "completion": "    pass\n"}])
    with pytest.raises(InputError, match="CODEMILL_SANDBOX_API_KEY"):
        score_samples(EvalConfig(limit=1, sandbox_url=service), path, "humaneval", str(tmp_path / "o"), tracker)
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", "wrong")
    with pytest.raises(InputError, match="HTTP 401"):
        score_samples(EvalConfig(limit=1, sandbox_url=service), path, "humaneval", str(tmp_path / "o"), tracker)
    assert not os.path.exists(tmp_path / "o" / "results.jsonl")

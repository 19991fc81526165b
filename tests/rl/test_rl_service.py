"""``--sandbox-url``: rewards from the verifier's HTTP service equal the in-process ones."""

from __future__ import annotations

import glob

import pyarrow.parquet as pq
import pytest

from codemill import runner
from codemill.evaluate.sandbox import Sandbox
from codemill.stage import InputError
from tests.rl.conftest import fast_config


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from codemill.verify.server import ServerConfig, serve

    mp = pytest.MonkeyPatch()
    mp.setenv("CODEMILL_SANDBOX_API_KEY", "test-key")
    servers = []
    with Sandbox() as box:
        serve(ServerConfig(api_key="test-key", workers=2, timeout=5.0), box, "127.0.0.1", 0, ready=servers.append)
        host, port = servers[0].server_address[:2]
        yield f"http://{host}:{port}"
        servers[0].shutdown()
    mp.undo()


def _rows(output: str) -> list[dict]:
    return [r for f in sorted(glob.glob(f"{output}/rollouts/*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.mark.parametrize("source", ["tasks", "problems"])
def test_service_rewards_equal_in_process_rewards(
    service, source, task_model, line_model, tasks_dir, problems_file, tmp_path, monkeypatch
):
    from codemill.verify import client

    real, sent = client.score, []
    monkeypatch.setattr(
        client, "score", lambda benchmark, samples, **kw: sent.extend(samples) or real(benchmark, samples, **kw)
    )
    if source == "tasks":
        model, extra, inputs = task_model, {}, {"tasks": tasks_dir}
    else:
        model, extra, inputs = line_model, {"problems": problems_file}, {}
    local, remote = str(tmp_path / "local"), str(tmp_path / "remote")
    runner.run("rl", fast_config(max_steps=2, **extra), output=local, model=model, **inputs)
    stats = runner.run(
        "rl", fast_config(max_steps=2, sandbox_url=service, **extra), output=remote, model=model, **inputs
    )
    a, b = _rows(local), _rows(remote)
    assert len(a) == len(b) > 0
    assert [(r["completion"], r["reward"], r["passed"], r["fraction"]) for r in a] == [
        (r["completion"], r["reward"], r["passed"], r["fraction"]) for r in b
    ]
    assert any(r["passed"] for r in b) and all(v > 0 for v in stats["monitors"]["executions_per_second"])
    assert len(sent) >= len(b) and not any("#case" in s["task_id"] for s in sent)  # one sample per completion


@pytest.mark.parametrize("source", ["tasks", "problems"])
def test_a_service_without_case_counts_still_gives_the_same_rewards(
    service, source, task_model, line_model, tasks_dir, problems_file, tmp_path, monkeypatch
):
    from codemill.verify import client

    real, sent = client.score, []

    def old_server(benchmark, samples, **kw):  # the rows as a service before passed_cases/total answered them
        sent.extend(s["task_id"] for s in samples)
        return [
            {k: v for k, v in row.items() if k not in ("passed_cases", "total")}
            for row in real(benchmark, samples, **kw)
        ]

    model, extra, inputs = (
        (task_model, {}, {"tasks": tasks_dir}) if source == "tasks" else (line_model, {"problems": problems_file}, {})
    )
    local, remote = str(tmp_path / "local"), str(tmp_path / "remote")
    runner.run("rl", fast_config(max_steps=1, **extra), output=local, model=model, **inputs)
    monkeypatch.setattr(client, "score", old_server)
    runner.run("rl", fast_config(max_steps=1, sandbox_url=service, **extra), output=remote, model=model, **inputs)
    assert [(r["reward"], r["passed"], r["fraction"]) for r in _rows(local)] == [
        (r["reward"], r["passed"], r["fraction"]) for r in _rows(remote)
    ]
    assert any("#case" in task_id for task_id in sent)  # the fallback sent one sample per test case


def test_an_unreachable_service_is_one_line(line_model, problems_file, tmp_path):
    with pytest.raises(InputError, match="cannot reach the sandbox service"):
        runner.run(
            "rl",
            fast_config(problems=problems_file, sandbox_url="http://127.0.0.1:9"),
            output=str(tmp_path / "o"),
            model=line_model,
        )

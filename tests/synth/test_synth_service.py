"""``--sandbox-url``: a synth run whose executions go to a local sandbox service keeps and
quarantines exactly what the in-process run does (oss-instruct, distill on tasks and stdio
problems, mutual verification)."""

from __future__ import annotations

import pytest

from codemill import io
from codemill.cli import main
from codemill.evaluate.sandbox import Limits, Sandbox
from tests.synth.conftest import EXPECTED, oss_respond
from tests.synth.scripted import ScriptedTeacher
from tests.synth.test_synth_distill import FAST as DISTILL_FAST
from tests.synth.test_synth_distill import problems_respond, tasks_respond, write_problems, write_tasks
from tests.synth.test_synth_oss import FAST as OSS_FAST

KEY = "synth-test-key"


@pytest.fixture(scope="module")
def service():
    from codemill.verify.server import ServerConfig, serve

    mp = pytest.MonkeyPatch()
    mp.setenv("CODEMILL_SANDBOX_API_KEY", KEY)
    servers: list = []
    with Sandbox(Limits(timeout=2.0, memory_mb=1024)) as box:
        serve(ServerConfig(api_key=KEY, workers=2, timeout=3.0), box, "127.0.0.1", 0, ready=servers.append)
        yield f"http://127.0.0.1:{servers[0].server_address[1]}"
        servers[0].shutdown()
    mp.undo()


def _outcome(out: str) -> tuple[list, list, dict]:
    data = io.read_parquet(f"{out}/data/shard-00000-of-00001.parquet").to_pylist()
    quarantine = io.read_parquet(f"{out}/quarantine/shard-00000-of-00001.parquet").to_pylist()
    stats = io.read_json(f"{out}/stats.json")
    return (
        sorted((r["task_id"], r["sample"], r["tests"]) for r in data),
        sorted((q["task_id"], q["sample"], q["reason"]) for q in quarantine),
        stats,
    )


def _both(tmp_path, respond, args: list[str], service: str) -> tuple:
    found = []
    for name, extra in (("local", []), ("remote", ["--sandbox-url", service])):
        out = str(tmp_path / name)
        with ScriptedTeacher(respond) as teacher:
            assert main(["synth", *args, "--output", out, "--teacher-url", teacher.url, *extra]) == 0
        found.append(_outcome(out))
    return found[0], found[1]


def test_oss_instruct_through_the_service_keeps_what_in_process_keeps(service, oss_corpus, tmp_path):
    local, remote = _both(
        tmp_path,
        oss_respond,
        [
            "--mode",
            "oss-instruct",
            "--input",
            oss_corpus,
            "--teacher-model",
            "scripted",
            "--max-samples",
            str(len(EXPECTED)),
            *OSS_FAST,
        ],
        service,
    )
    assert remote[:2] == local[:2]
    assert {r for _, _, r in remote[1]} >= {"failed_tests", "timeout", "unparseable", "no_tests"}
    assert remote[2]["kept"] == local[2]["kept"] == 4 and remote[2]["sandbox"]["service"] == service


def test_distill_and_mutual_verification_through_the_service(service, tmp_path):
    tasks = write_tasks(tmp_path / "tasks-out")
    local, remote = _both(
        tmp_path / "t",
        tasks_respond,
        [
            "--mode",
            "distill",
            "--tasks",
            tasks,
            "--kinds",
            "generate",
            "output",
            "--samples-per-task",
            "4",
            *DISTILL_FAST,
        ],
        service,
    )
    assert remote[:2] == local[:2] and len(remote[0]) == 4
    problems = write_problems(tmp_path / "problems.jsonl")
    local, remote = _both(
        tmp_path / "p",
        problems_respond,
        [
            "--mode",
            "distill",
            "--problems",
            problems,
            "--samples-per-task",
            "4",
            "--mutual-verification",
            "5",
            "--agreement",
            "0.6",
            "--pass-rate-range",
            "0.1",
            "0.6",
            *DISTILL_FAST,
        ],
        service,
    )
    assert remote[:2] == local[:2] and len(remote[0]) == 4
    assert remote[2]["agreement_histogram"] == local[2]["agreement_histogram"] == {"0.2-0.3": 1, "0.6-0.7": 2}
    assert remote[2]["sandbox"]["service"] == service and "service" not in local[2]["sandbox"]


def test_a_missing_api_key_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CODEMILL_SANDBOX_API_KEY", raising=False)
    tasks = write_tasks(tmp_path / "tasks-out")
    with ScriptedTeacher(tasks_respond) as teacher:
        code = main(
            [
                "synth",
                "--mode",
                "distill",
                "--tasks",
                tasks,
                "--output",
                str(tmp_path / "o"),
                "--teacher-url",
                teacher.url,
                "--sandbox-url",
                "http://127.0.0.1:9",
                *DISTILL_FAST,
            ]
        )
    assert code == 2 and "CODEMILL_SANDBOX_API_KEY holds no API key" in capsys.readouterr().err

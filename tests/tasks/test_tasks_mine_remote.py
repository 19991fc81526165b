"""``codemill tasks --sandbox-url``: mining with the references run on the sandbox service
("calls" requests) writes the same tasks, quarantine and report as mining in-process."""

import glob
import json
import os

import pytest
from kfp import dsl
from tasks_corpus import write_corpus
from test_tasks_stage import CONFIG, mine, tasks

from codemill import runner, stage
from codemill.cli import main
from codemill.evaluate.sandbox import Limits, Sandbox
from codemill.stage import InputError
from codemill.tasks import TasksConfig
from codemill.verify.server import ServerConfig, serve
from components._common import cpu_task
from components.run import start_run
from components.tasks import tasks_finish, tasks_shards

KEY = "tasks-mine-remote-key"
SAME = ("candidates", "functions_kept", "quarantined", "tasks", "by_kind", "by_reason", "examples_disagreeing")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(str(tmp_path_factory.mktemp("mine-remote") / "corpus"))


@pytest.fixture(scope="module")
def service():
    with Sandbox(Limits(timeout=3.0, memory_mb=1024)) as sandbox:
        server = serve(ServerConfig(KEY, workers=2, timeout=3.0), sandbox, "127.0.0.1", 0, ready=lambda s: None)
        yield f"http://127.0.0.1:{server.server_address[1]}", server
        server.shutdown()


def _outputs(out: str) -> dict[str, bytes]:
    paths = sorted(
        glob.glob(os.path.join(out, "tasks", "*.parquet"))
        + glob.glob(os.path.join(out, "quarantine", "*.parquet"))
        + glob.glob(os.path.join(out, "_work", "functions", "*.parquet"))
        + [os.path.join(out, "report.md")]
    )
    return {os.path.relpath(p, out): open(p, "rb").read() for p in paths}


def test_mining_on_the_service_writes_what_mining_in_process_writes(corpus, service, tmp_path, monkeypatch, capsys):
    url, server = service
    local = mine(corpus, str(tmp_path / "local"))
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", KEY)
    monkeypatch.setattr("codemill.verify.calls.default_sandbox", None)  # no sandbox in this process now
    flags = ["--timeout", str(CONFIG["timeout"]), "--workers", str(CONFIG["workers"]), "--no-tracking"]
    code = main(["tasks", "--input", corpus, "--output", str(tmp_path / "remote"), "--sandbox-url", url, *flags])
    assert code == 0
    remote = json.load(open(tmp_path / "remote" / "stats.json"))
    assert _outputs(str(tmp_path / "remote")) == _outputs(str(tmp_path / "local"))
    assert {k: remote[k] for k in SAME} == {k: local[k] for k in SAME}
    assert remote["config"]["sandbox_url"] == url and local["config"]["sandbox_url"] == ""
    # the corpus's timeout, memory hog and hash-order cases all ran on the service, under its seeds
    assert {"timeout", "raises", "nondeterministic"} <= set(remote["by_reason"])
    assert set(TasksConfig().hash_seeds()) <= set(server.seeds.started())
    capsys.readouterr()


def test_a_missing_key_or_a_limit_over_the_services_is_one_line_naming_it(corpus, service, tmp_path, monkeypatch):
    url, _ = service
    monkeypatch.delenv("CODEMILL_SANDBOX_API_KEY", raising=False)
    config = TasksConfig(**CONFIG, sandbox_url=url)
    with pytest.raises(InputError, match=r"--sandbox-url .*CODEMILL_SANDBOX_API_KEY holds no API key"):
        runner.run("tasks-shard", config, output=str(tmp_path / "nokey"), input=corpus)
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", KEY)
    config = TasksConfig(**{**CONFIG, "timeout": 10.0}, sandbox_url=url)
    with pytest.raises(InputError, match=r'HTTP 400: "timeout" must be a number in \(0, 3.0\]'):
        runner.run("tasks-shard", config, output=str(tmp_path / "slow"), input=corpus)
    with pytest.raises(InputError, match="sandbox_url must be an http"):
        TasksConfig(sandbox_url="codemill-sandbox:8080").ensure_valid()


@dsl.pipeline(name="tasks-on-the-service")
def tasks_on_service(input: str, output: str, work_root: str, options: dict, sandbox_url: str = ""):
    """The tasks steps as the pipelines wire them, the sandbox URL a pipeline parameter."""
    layout = start_run(
        work_root=work_root, run_name="test", kfp_run_id="local", tracking_uri="none", num_shards=2
    ).outputs
    tracking = dict(tracking_uri="none", parent_run_id=layout["parent_run_id"])
    shards = tasks_shards(
        input=input,
        output=output,
        shards=layout["shards"],
        world_size=2,
        seed=0,
        options=options,
        sandbox_url=sandbox_url,
        **tracking,
    )
    cpu_task(tasks_finish(output=output, world_size=2, seed=0, options=options, **tracking)).after(shards)


@pytest.mark.slow
def test_kfp_local_shards_with_the_pipeline_parameter_use_the_service(corpus, service, tmp_path, monkeypatch):
    from codemill.pipeline_cli import init_local

    url, _ = service
    monkeypatch.setenv("CODEMILL_SANDBOX_API_KEY", KEY)  # the step subprocesses inherit it
    init_local(str(tmp_path / "kfp"))
    got = str(tmp_path / "runs" / "test" / "tasks")
    options = {"timeout": CONFIG["timeout"], "workers": CONFIG["workers"]}
    tasks_on_service(input=corpus, output=got, work_root=str(tmp_path / "runs"), options=options, sandbox_url=url)
    for rank in range(2):
        assert stage.read_marker(got, "tasks", rank, 2)["config"]["sandbox_url"] == url
    mine(corpus, str(tmp_path / "py"), world_size=2)
    assert tasks(got) == tasks(str(tmp_path / "py"))

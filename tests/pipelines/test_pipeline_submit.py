"""`codemill pipeline submit`: the calls it makes on kfp.Client (a recording test double)."""

import types

import kfp

from codemill import cli


class RecordingClient:
    """Stands in for kfp.Client: keeps pipelines/versions in memory, records every call."""

    pipelines: dict = {}
    calls: list = []

    def __init__(self, host, namespace=None, existing_token=None):
        self.calls.append(("init", host))

    def get_pipeline_id(self, name):
        return self.pipelines.get(name, {}).get("id")

    def upload_pipeline(self, package, pipeline_name, namespace=None):
        self.pipelines[pipeline_name] = {"id": "p1", "versions": {pipeline_name: "v0"}}
        self.calls.append(("upload_pipeline", pipeline_name))
        return types.SimpleNamespace(pipeline_id="p1")

    def list_pipeline_versions(self, pipeline_id, page_size=20):
        versions = next(p["versions"] for p in self.pipelines.values() if p["id"] == pipeline_id)
        return types.SimpleNamespace(
            pipeline_versions=[
                types.SimpleNamespace(display_name=k, pipeline_version_id=v) for k, v in versions.items()
            ]
        )

    def upload_pipeline_version(self, package, pipeline_version_name, pipeline_id):
        p = next(p for p in self.pipelines.values() if p["id"] == pipeline_id)
        p["versions"][pipeline_version_name] = f"v{len(p['versions'])}"
        self.calls.append(("upload_version", pipeline_version_name))
        return types.SimpleNamespace(pipeline_version_id=p["versions"][pipeline_version_name])

    def create_experiment(self, name, namespace=None):
        return types.SimpleNamespace(experiment_id="e1")

    def run_pipeline(self, **kwargs):
        self.calls.append(("run", kwargs))
        return types.SimpleNamespace(run_id="r1")


def test_submit_uploads_a_version_once_and_starts_a_run(monkeypatch, capsys):
    RecordingClient.pipelines, RecordingClient.calls = {}, []
    monkeypatch.setattr(kfp, "Client", RecordingClient)
    args = [
        "pipeline",
        "submit",
        "--host",
        "http://kfp.test",
        "--version",
        "rel-1",
        "--param",
        "num_shards=4",
        "--service-account",
        "codemill-pipeline-runner",
    ]
    assert cli.main(args) == 0
    assert cli.main(args[:-2] + ["--no-run"]) == 0  # the same release again: the version is reused
    uploads = [c for c in RecordingClient.calls if c[0].startswith("upload")]
    assert uploads == [("upload_pipeline", "codemill"), ("upload_version", "rel-1")]
    runs = [c[1] for c in RecordingClient.calls if c[0] == "run"]
    assert len(runs) == 1
    assert runs[0]["params"] == {"num_shards": 4}
    assert runs[0]["version_id"] == "v1" and runs[0]["service_account"] == "codemill-pipeline-runner"
    assert "run r1 started" in capsys.readouterr().out


def test_params_are_read_by_their_declared_type(monkeypatch):
    RecordingClient.pipelines, RecordingClient.calls = {}, []
    monkeypatch.setattr(kfp, "Client", RecordingClient)
    assert (
        cli.main(
            [
                "pipeline",
                "submit",
                "--host",
                "http://kfp.test",
                "--version",
                "rel-2",
                "--param",
                "run_name=2024",
                "--param",
                "gpu_count=2",
                "--param",
                "num_shards=4",
                "--param",
                "train_memory=3Gi",
                "--param",
                'validate_options={"max_repos": 8}',
            ]
        )
        == 0
    )
    params = next(c[1] for c in RecordingClient.calls if c[0] == "run")["params"]
    assert params == {
        "run_name": "2024",
        "gpu_count": "2",
        "num_shards": 4,
        "train_memory": "3Gi",
        "validate_options": {"max_repos": 8},
    }


def test_a_value_of_the_wrong_type_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(kfp, "Client", RecordingClient)
    for bad in ("num_shards=four", "validate_options=[8]", "gpu_tolerations={}"):
        assert cli.main(["pipeline", "submit", "--host", "http://kfp.test", "--param", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert bad.split("=")[0] in err and len(err.splitlines()) == 1, err

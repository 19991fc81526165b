"""Model references: MLflow registry (sqlite store), s3:// (moto over HTTP) and local directories."""

import filecmp
import os

import pytest

from codemill import io
from codemill.serve import registry
from codemill.serve.model_source import fetch_model
from codemill.stage import InputError
from codemill.tracking import stage_run
from tests.serve.serve_helpers import new_mlflow_store


def same_files(a: str, b: str) -> bool:
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and filecmp.cmpfiles(a, b, names, shallow=False)[0] == names


def _register(uri: str, model_dir: str) -> str:
    with stage_run("serve", uri=uri) as tracker:
        tracker.log_artifacts(model_dir, "model")
        source = tracker.client.get_run(tracker.run_id).info.artifact_uri + "/model"
        return registry.register(tracker.client, tracker.run_id, source, "codemill")


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory, tiny_model_dir, mlflow_template):
    """A sqlite store holding two versions of `codemill`."""
    uri = new_mlflow_store(tmp_path_factory.mktemp("mlflow"), mlflow_template)
    assert [_register(uri, tiny_model_dir), _register(uri, tiny_model_dir)] == ["1", "2"]
    return uri


def test_registry_versions_alias_and_fetch(mlflow_uri, tiny_model_dir, tmp_path):
    client = registry.client_for(mlflow_uri)
    assert registry.alias_version(client, "codemill", "champion") is None
    registry.move_alias(client, "codemill", "champion", "1")
    assert registry.alias_version(client, "codemill", "champion") == "1"

    by_alias = fetch_model("models:/codemill@champion", str(tmp_path / "cache"), mlflow_uri)
    by_version = fetch_model("models:/codemill/2", str(tmp_path / "cache"), mlflow_uri)
    assert by_alias != by_version
    assert same_files(by_alias, tiny_model_dir) and same_files(by_version, tiny_model_dir)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("models:/codemill@nobody", "models:/codemill@nobody: not found"),
        ("models:/other/1", "models:/other/1: not found"),
        ("models:/codemill", "expected models:/NAME@ALIAS"),
        ("models:/codemill/latest", "expected models:/NAME@ALIAS"),
    ],
)
def test_bad_registry_references_name_the_reference(mlflow_uri, tmp_path, uri, message):
    with pytest.raises(InputError, match=message):
        fetch_model(uri, str(tmp_path), mlflow_uri)


def test_registry_reference_without_tracking_uri(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(InputError, match="needs an MLflow registry"):
        fetch_model("models:/codemill@champion", str(tmp_path))


def test_s3_prefix_is_downloaded(s3_endpoint, tiny_model_dir, tmp_path):
    io.s3_client().create_bucket(Bucket="models")
    io.upload_dir(tiny_model_dir, "s3://models/codemill/v1")
    local = fetch_model("s3://models/codemill/v1", str(tmp_path))
    assert same_files(local, tiny_model_dir)
    with pytest.raises(io.StorageError, match="s3://models/nothing"):
        fetch_model("s3://models/nothing", str(tmp_path))


def test_local_directory_must_be_a_model(tiny_model_dir, tmp_path):
    assert fetch_model(tiny_model_dir, "") == tiny_model_dir
    assert fetch_model("file://" + tiny_model_dir, "") == tiny_model_dir
    with pytest.raises(InputError, match="no such model directory"):
        fetch_model(str(tmp_path / "missing"), "")
    with pytest.raises(InputError, match="no config.json"):
        fetch_model(str(tmp_path), "")

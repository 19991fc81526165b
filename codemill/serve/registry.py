"""The MLflow Model Registry side of serving: register a model, move an alias, resolve a reference.

A version's files are logged as artifacts of the run that registers it (the serve
step's run), so a version never changes when a pipeline run folder is overwritten or
cleaned up; the version's ``source`` points at those artifacts. ``models:/NAME@ALIAS``
and ``models:/NAME/VERSION`` are resolved here (alias -> version -> source) and the
files downloaded with ``mlflow.artifacts.download_artifacts``, which reads any artifact
store MLflow supports (local, S3, the tracking server's proxy).

Each version carries the metrics it was judged on (tag ``codemill.metrics``, JSON), so a
later challenger is compared with what the champion scored when it was registered.
"""

from __future__ import annotations

import json
import re

from codemill import tracking
from codemill.stage import InputError

MODELS_PREFIX = "models:/"
METRICS_TAG = "codemill.metrics"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def is_models_uri(uri: str) -> bool:
    return uri.startswith(MODELS_PREFIX)


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name@alias`` -> (name, None, alias); ``models:/name/3`` -> (name, "3", None)."""
    m = _MODELS_URI.match(uri)
    if not m:
        raise InputError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return m["name"], m["version"], m["alias"]


def client_for(tracking_uri: str | None):
    """An MlflowClient on the tracking server, which is also the registry."""
    from mlflow.tracking import MlflowClient

    uri = tracking.resolve_uri(tracking_uri)
    if uri is None:
        raise InputError(
            "a models:/ reference needs an MLflow registry: pass --tracking-uri or set MLFLOW_TRACKING_URI"
        )
    tracking.check_reachable(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def resolve_version(client, uri: str):
    """The ModelVersion a ``models:/`` reference points at; InputError naming it if none."""
    from mlflow.exceptions import MlflowException

    name, version, alias = parse_models_uri(uri)
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, version)
    except MlflowException as e:
        raise InputError(f"{uri}: not found in the MLflow registry at {client.tracking_uri}: {e.message}") from e


def download_version(client, uri: str, dest: str) -> str:
    """Download the files of the version ``uri`` names into ``dest``; returns the local directory."""
    import mlflow.artifacts

    mv = resolve_version(client, uri)
    return mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=dest, tracking_uri=client.tracking_uri)


def register(client, run_id: str, artifact_uri: str, name: str, tags: dict[str, str] | None = None) -> str:
    """Create a new version of ``name`` (creating the registered model if needed); returns its number.

    ``artifact_uri`` is where the model's files already are (the run's ``model`` artifacts).
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description="codemill code model (served by `codemill serve`)")
        except MlflowException:  # created concurrently by another pipeline run
            client.get_registered_model(name)
    mv = client.create_model_version(name, artifact_uri, run_id=run_id, tags=tags or {})
    return str(mv.version)


def metrics_tag(metrics: dict[str, float]) -> dict[str, str]:
    """The version tag that records ``metrics`` (``register(..., tags=...)``)."""
    return {METRICS_TAG: json.dumps(metrics, sort_keys=True)}


def version_metrics(client, name: str, version: str) -> dict[str, float] | None:
    """The metrics recorded with a version; None for a version registered without them."""
    raw = client.get_model_version(name, version).tags.get(METRICS_TAG)
    if not raw:
        return None
    try:
        metrics = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"models:/{name}/{version}: tag {METRICS_TAG} is not JSON ({e})") from e
    if not isinstance(metrics, dict):
        raise InputError(f"models:/{name}/{version}: tag {METRICS_TAG} is not a JSON object")
    return metrics


def alias_version(client, name: str, alias: str) -> str | None:
    """The version an alias points at now, or None when it points nowhere yet."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_alias(client, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, version)

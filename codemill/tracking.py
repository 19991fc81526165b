"""MLflow tracking, or a no-op stand-in, behind one small interface.

One parent run per pipeline run (tagged with the KFP run id), one nested run per stage.
Stages call ``tracker.log_params/log_metrics/log_artifact`` and never check whether
tracking is on: with ``--no-tracking`` they get :class:`NoOpTracker`.

The tracking URI comes from the caller, else ``MLFLOW_TRACKING_URI``. An ``http(s)``
server is probed before a stage starts work, so an unreachable server fails fast with
a message that names the URI instead of retrying deep inside a stage.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

EXPERIMENT = os.environ.get("CODEMILL_EXPERIMENT", "codemill")
DISABLED = {"none", "off", "false", "disabled", "no"}


class TrackingUnavailable(RuntimeError):
    """The tracking server cannot be reached; the message names the URI."""


@runtime_checkable
class Tracker(Protocol):
    """What a stage may call on its tracker; every stage signature takes one of these."""

    run_id: str | None
    enabled: bool

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None: ...
    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None: ...
    def log_text(self, text: str, name: str) -> None: ...
    def log_dict(self, obj: Any, name: str) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...


class NoOpTracker:
    """Accepts every call and records nothing (tracking turned off)."""

    run_id: str | None = None
    enabled = False

    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None: ...
    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None: ...
    def log_text(self, text: str, name: str) -> None: ...
    def log_dict(self, obj: Any, name: str) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...


class MlflowTracker:
    """A thin wrapper over one MLflow run, through MlflowClient (no global state)."""

    enabled = True

    def __init__(self, client, run_id: str):
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        flat = {_param_name(k): v for k, v in _flatten(params).items()}
        items = [Param(k, str(v)[:6000]) for k, v in sorted(flat.items())]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step or 0)
            for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and v == v
        ]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i : i + 500])

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, local_path, artifact_path)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def log_text(self, text: str, name: str) -> None:
        """Log ``text`` as the artifact ``name`` (e.g. ``report.md``), with no temp file at the call site."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, os.path.basename(name))
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            self.client.log_artifact(self.run_id, path, os.path.dirname(name) or None)

    def log_dict(self, obj: Any, name: str) -> None:
        self.log_text(json.dumps(obj, indent=2, sort_keys=True, default=str), name)

    def set_tags(self, tags: dict[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))


_PARAM_CHARS = re.compile(r"[^\w\-. :/]")


def _param_name(key: str) -> str:
    """MLflow refuses param names outside [alphanumerics _ - . space : /]; a gate key such as
    ``humaneval.greedy.pass@1`` becomes ``humaneval.greedy.pass_1``."""
    return _PARAM_CHARS.sub("_", key)[:250]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------------------- URIs


def resolve_uri(uri: str | None) -> str | None:
    """The tracking URI to use, or None when tracking is off."""
    uri = (uri or "").strip() or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri or uri.lower() in DISABLED:
        return None
    return uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            if resp.status >= 500:
                raise TrackingUnavailable(f"MLflow tracking server {uri} answered {resp.status} on /health")
    except urllib.error.HTTPError as e:
        if e.code >= 500:
            raise TrackingUnavailable(f"MLflow tracking server {uri} answered {e.code} on /health") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} is unreachable ({reason}); "
            "set MLFLOW_TRACKING_URI / --tracking-uri, or pass --no-tracking"
        ) from e


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    check_reachable(uri)
    return MlflowClient(tracking_uri=uri)


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store live beside the database, not in the CWD."""
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///") :]
        return "file://" + os.path.join(os.path.dirname(os.path.abspath(db)), "mlartifacts")
    return None


def _experiment_id(client) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=artifact_location(client.tracking_uri))
    except Exception:  # created concurrently by another step
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


# ---------------------------------------------------------------------------- runs


def start_pipeline_run(uri: str | None, kfp_run_id: str, run_name: str = "codemill") -> str:
    """Create the parent run for one pipeline run; returns its id ("" when tracking is off)."""
    uri = resolve_uri(uri)
    if uri is None:
        return ""
    client = _client(uri)
    run = client.create_run(
        _experiment_id(client),
        run_name=run_name,
        tags={"kfp.run_id": kfp_run_id, "codemill.role": "pipeline"},
    )
    return run.info.run_id


@contextmanager
def stage_run(
    stage: str,
    uri: str | None = None,
    parent_run_id: str = "",
    enabled: bool = True,
    tags: dict[str, str] | None = None,
) -> Iterator[Tracker]:
    """A nested run for one stage (or shard); ends FINISHED, or FAILED on an exception."""
    uri = resolve_uri(uri) if enabled else None
    if uri is None:
        yield NoOpTracker()
        return
    client = _client(uri)
    run_tags = {"codemill.stage": stage, **(tags or {})}
    if parent_run_id:
        run_tags["mlflow.parentRunId"] = parent_run_id
        parent = client.get_run(parent_run_id)
        if "kfp.run_id" in parent.data.tags:
            run_tags["kfp.run_id"] = parent.data.tags["kfp.run_id"]
    run = client.create_run(_experiment_id(client), run_name=stage, tags=run_tags)
    tracker = MlflowTracker(client, run.info.run_id)
    try:
        yield tracker
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")


def finish_pipeline_run(uri: str | None, run_id: str, status: str = "FINISHED") -> None:
    uri = resolve_uri(uri)
    if uri and run_id:
        _client(uri).set_terminated(run_id, status=status)

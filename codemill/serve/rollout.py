"""The pipeline's last step: gate, register, roll out, smoke-test, or leave serving as it was.

Order of events, and why:

1. **Gate** on evaluate's ``metrics.json`` and train's ``stats.json``
   (:mod:`codemill.serve.gate`): the absolute rules, then, when a model holds the alias,
   **champion versus challenger** on the metrics the registry recorded for the champion
   (perplexity may not rise, pass@k may not fall, beyond ``max_regression``). A failure
   records its reasons (both values for a regression) and stops here: the registry, the
   alias and the Deployment are untouched.
2. **Register** a new version of the registered model (its files logged as this step's
   MLflow artifacts, its comparable metrics as the version's ``codemill.metrics`` tag).
   With tracking off there is no registry and no champion: the model is served from its
   directory and the report says so.
3. **Deploy** the exact version (``models:/codemill/7``, never the moving alias):
   ``target="local"`` starts ``codemill serve`` on a free port; ``target="kubernetes"``
   patches the inference Deployment and waits for the rollout (:mod:`codemill.serve.kube`).
4. **Smoke** (:mod:`codemill.serve.smoke`): completion, FIM with ``suffix``, streaming.
5. Only when the smoke passed does the **alias** (``champion``) move to the new version.
   A failed Kubernetes smoke rolls the Deployment back to the model it served before.

``stats.json`` holds the decision and its reasons, the registry version, the smoke
results with latency and the command to serve the model by hand; ``report.md`` says the
same for people.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass, field

from codemill import io
from codemill.serve import registry
from codemill.serve.gate import (
    DEFAULT_GATE,
    comparable_metrics,
    compare_with_champion,
    direction,
    evaluate_gate,
    gate_metrics,
)
from codemill.serve.report import render_report
from codemill.stage import InputError, numeric_metrics, write_stats
from codemill.tracking import Tracker

_SERVICE_URL = "http://codemill-serve.codemill.svc.cluster.local:8000"


def _env(name: str, default: str) -> str:
    """Cluster settings come from the pipeline's ConfigMap (k8s/base/pipeline-env.yaml) when set."""
    return os.environ.get(name) or default


@dataclass
class RolloutConfig:
    gate: dict = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_GATE.items()},
        metadata={
            "help": 'thresholds, metric path -> rules, e.g. {"humaneval.greedy.pass@1": {"min": 0.1}}',
            "cli": False,
        },
    )
    target: str = field(
        default="auto",
        metadata={
            "help": "local: start `codemill serve` here and smoke it; kubernetes: roll the inference Deployment; "
            "auto: kubernetes inside a cluster ($KUBERNETES_SERVICE_HOST set), local elsewhere (kfp.local)",
            "choices": ["auto", "local", "kubernetes"],
        },
    )
    registered_model: str = field(default="codemill", metadata={"help": "MLflow registered model name"})
    alias: str = field(default="champion", metadata={"help": "registry alias moved to a version that passed"})
    max_regression: float = field(
        default=0.0,
        metadata={
            "help": "share of the champion's value a challenger may lose and still replace it (0.05: perplexity "
            "up to 1.05x, pass@k down to 0.95x); 0 refuses any regression"
        },
    )
    smoke_max_tokens: int = field(default=16, metadata={"help": "max_tokens of each smoke request"})
    ready_timeout_s: float = field(default=300.0, metadata={"help": "how long a local server may take to become ready"})
    namespace: str = field(
        default_factory=lambda: _env("CODEMILL_NAMESPACE", "codemill"),
        metadata={"help": "kubernetes: namespace of the inference Deployment (default from $CODEMILL_NAMESPACE)"},
    )
    deployment: str = field(
        default_factory=lambda: _env("CODEMILL_SERVE_DEPLOYMENT", "codemill-serve"),
        metadata={"help": "kubernetes: the inference Deployment (default from $CODEMILL_SERVE_DEPLOYMENT)"},
    )
    container: str = field(default="server", metadata={"help": "kubernetes: the server container in it"})
    model_env: str = field(
        default="CODEMILL_MODEL_URI",
        metadata={"help": "kubernetes: the container's environment variable holding the model reference"},
    )
    service_url: str = field(
        default_factory=lambda: _env("CODEMILL_SERVE_URL", _SERVICE_URL),
        metadata={
            "help": "kubernetes: the inference Service's URL, for the smoke requests (default from $CODEMILL_SERVE_URL)"
        },
    )
    rollout_timeout_s: float = field(default=900.0, metadata={"help": "kubernetes: how long the rollout may take"})
    rollout_poll_s: float = field(default=5.0, metadata={"help": "kubernetes: seconds between rollout status reads"})
    api_key_env: str = field(
        default="CODEMILL_API_KEY",
        metadata={"help": "environment variable with the server's API key, sent with the smoke requests"},
    )

    def ensure_valid(self) -> RolloutConfig:
        """Raise InputError naming a setting that cannot work, before anything is registered."""
        if not isinstance(self.gate, dict):
            raise InputError(f"serve: gate must be a mapping of metric path -> rules, got {self.gate!r}")
        for name in ("smoke_max_tokens", "ready_timeout_s", "rollout_timeout_s", "rollout_poll_s"):
            if getattr(self, name) <= 0:
                raise InputError(f"serve: {name} must be > 0, got {getattr(self, name)}")
        if isinstance(self.max_regression, bool) or not self.max_regression >= 0:
            raise InputError(
                f"serve: max_regression must be >= 0 (a share of the champion's value), got {self.max_regression!r}"
            )
        return self

    def resolved_target(self) -> str:
        if self.target != "auto":
            return self.target
        return "kubernetes" if os.environ.get("KUBERNETES_SERVICE_HOST") else "local"


def _read_json(url: str, what: str) -> dict:
    if not io.exists(url):
        raise InputError(f"{url}: missing ({what})")
    data = io.read_json(url)
    if not isinstance(data, dict):
        raise InputError(f"{url}: expected a JSON object ({what})")
    return data


def _champion(config: RolloutConfig, challenger: dict, tracker: Tracker) -> dict:
    """Compare the challenger with the version holding the alias, if any holds it."""
    if not tracker.enabled:
        return {
            "version": None,
            "passed": True,
            "note": "tracking is off: no registry, so no champion to compare with; judged by the absolute rules",
        }
    name, alias = config.registered_model, config.alias
    version = registry.alias_version(tracker.client, name, alias)
    if version is None:
        return {
            "version": None,
            "passed": True,
            "note": f"no version of {name} holds @{alias} yet: the first model is judged by the absolute rules",
        }
    entry = {"version": version, "model_uri": f"models:/{name}/{version}"}
    recorded = registry.version_metrics(tracker.client, name, version)
    if recorded is None:
        return {
            **entry,
            "passed": True,
            "note": f"version {version} was registered without metrics: judged by the absolute rules",
        }
    if not any(direction(k) for k in recorded):  # else the comparison would pass with no check at all
        return {
            **entry,
            "passed": True,
            "note": f"version {version} was registered with no metric to compare (held-out perplexity or "
            "pass@k): judged by the absolute rules",
        }
    return {**entry, "metrics": recorded, **compare_with_champion(challenger, recorded, config.max_regression)}


def _register(config: RolloutConfig, model: str, tracker: Tracker, metrics: dict) -> dict:
    """Log the model's files on this step's run and create a registry version from them."""
    with tempfile.TemporaryDirectory(prefix="codemill-register-") as tmp:
        tracker.log_artifacts(io.download_dir(model, tmp), "model")
    client, run_id = tracker.client, tracker.run_id
    source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    version = registry.register(
        client,
        run_id,
        source,
        config.registered_model,
        tags={"codemill.source": model, **registry.metrics_tag(metrics)},
    )
    return {
        "name": config.registered_model,
        "version": version,
        "version_number": int(version),
        "model_uri": f"models:/{config.registered_model}/{version}",
        "source": source,
        "alias": config.alias,
        "previous_alias_version": registry.alias_version(client, config.registered_model, config.alias),
        "alias_moved": False,
        "tracking_uri": client.tracking_uri,
    }


def _local_deploy(config: RolloutConfig, serve_uri: str, output: str, tracking_uri: str) -> dict:
    from codemill.serve.smoke import LocalServer, smoke, wait_ready

    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    with tempfile.TemporaryDirectory(prefix="codemill-smoke-") as tmp:
        server = LocalServer(serve_uri, os.path.join(tmp, "server.log"), env=env)
        with server:
            try:
                ready_s = wait_ready(server.url, config.ready_timeout_s, server.alive)
                result = smoke(server.url, os.environ.get(config.api_key_env, ""), config.smoke_max_tokens)
                result["ready_s"] = round(ready_s, 3)
            except (TimeoutError, RuntimeError) as e:
                result = {"passed": False, "url": server.url, "error": str(e), "requests": []}
        result["server_exit_code"] = server.proc.returncode
        result["command"] = "python " + shlex.join(server.command[1:])
        io.write_bytes(io.join(output, "server.log"), io.read_bytes(server.log_path))
    result["server_log"] = io.join(output, "server.log")
    return result


def _kube_deploy(config: RolloutConfig, serve_uri: str, api) -> dict:
    from kubernetes.client.exceptions import ApiException

    from codemill.serve import kube
    from codemill.serve.smoke import smoke

    api = api if api is not None else kube.apps_api()
    target = kube.KubeTarget(config.namespace, config.deployment, config.container, config.model_env)
    name = f"{config.namespace}/{config.deployment}"
    try:
        previous = kube.current_model(api, target)
    except (ApiException, LookupError) as e:
        raise InputError(f"deployment {name}: cannot read it: {getattr(e, 'reason', None) or e}") from e
    result: dict = {"previous_model": previous, "deployment": name}
    try:
        result["rollout"] = kube.wait_rollout(
            api, target, kube.set_model(api, target, serve_uri), config.rollout_timeout_s, config.rollout_poll_s
        )
        result.update(smoke(config.service_url, os.environ.get(config.api_key_env, ""), config.smoke_max_tokens))
    except (TimeoutError, RuntimeError, ApiException) as e:
        result.update(passed=False, error=str(e).strip(), requests=result.get("requests", []))
    if not result["passed"] and previous and previous != serve_uri:
        kube.set_model(api, target, previous)  # leave serving as it was
        result["rolled_back_to"] = previous
    return result


def serve_command(stats: dict) -> str:
    reg = stats.get("registry") or {}
    if stats["rolled_out"] and reg.get("alias_moved"):
        uri = f"models:/{reg['name']}@{reg['alias']}"
        return f"MLFLOW_TRACKING_URI={shlex.quote(reg['tracking_uri'])} codemill serve --model {shlex.quote(uri)}"
    return f"codemill serve --model {shlex.quote(stats['model'])}"


def rollout(
    config: RolloutConfig, model: str, eval_dir: str, train_dir: str, output: str, tracker: Tracker, kube_api=None
) -> dict:
    """Gate ``model`` on its metrics and, when it passes, register, deploy and smoke it; writes stats and report.

    An empty ``model`` means train's model directory, ``<train_dir>/model``.
    """
    model = model or io.join(train_dir, "model")
    target = config.resolved_target()
    if not io.exists(io.join(model, "config.json")):
        raise InputError(f"{model}: not a Hugging Face model directory (no config.json)")
    eval_metrics = _read_json(io.join(eval_dir, "metrics.json"), "evaluate's metrics")
    metrics = gate_metrics(eval_metrics, _read_json(io.join(train_dir, "stats.json"), "train's stats"))
    gate = evaluate_gate(metrics, config.gate)
    challenger = comparable_metrics(eval_metrics)
    champion = _champion(config, challenger, tracker)
    stats: dict = {
        "model": model,
        "target": target,
        "gate": gate,
        "champion": champion,
        "gate_passed": gate["passed"] and champion["passed"],
        "rolled_out": False,
        "registry": None,
        "smoke": None,
    }
    if not stats["gate_passed"]:
        reasons = gate["reasons"] + [f"champion v{champion['version']}: {r}" for r in champion.get("reasons", [])]
        stats["decision"] = "not rolled out, serving left as it was: " + "; ".join(reasons)
    else:
        reg = _register(config, model, tracker, challenger) if tracker.enabled else None
        stats["registry"] = reg or {"skipped": "tracking is off: no registry, the model is served from its directory"}
        serve_uri = reg["model_uri"] if reg else model
        if target == "kubernetes":
            stats["smoke"] = _kube_deploy(config, serve_uri, kube_api)
        else:
            stats["smoke"] = _local_deploy(config, serve_uri, output, reg["tracking_uri"] if reg else "")
        stats["rolled_out"] = bool(stats["smoke"]["passed"])
        if stats["rolled_out"] and reg:
            registry.move_alias(tracker.client, reg["name"], reg["alias"], reg["version"])
            reg["alias_moved"] = True
        stats["decision"] = (
            f"rolled out {serve_uri} ({target})"
            if stats["rolled_out"]
            else f"not rolled out: smoke failed on {serve_uri}: "
            f"{stats['smoke'].get('error') or 'a smoke request failed'}"
        )
    stats["serve_command"] = serve_command(stats)
    write_stats(output, stats)
    io.write_text(io.join(output, "report.md"), render_report(stats))
    tracker.log_metrics(numeric_metrics({k: stats[k] for k in ("gate_passed", "rolled_out")}))
    if stats["smoke"]:
        tracker.log_metrics(numeric_metrics(stats["smoke"], prefix="smoke."))
    tracker.set_tags({"codemill.decision": stats["decision"][:250]})
    for name in ("stats.json", "report.md"):
        tracker.log_text(io.read_text(io.join(output, name)), name)
    return stats

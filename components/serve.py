"""KFP face of the serve stage: the gate + registry + rollout + smoke step.

Caching must be off for this task (``set_caching_options(False)``): it moves a registry
alias and patches a Deployment, side effects a cached result would skip.
"""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def serve_rollout(
    model: str,
    eval_dir: str,
    train_dir: str,
    output: str,
    gate: dict,
    target: str,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Gate the trained model on its metrics; on a pass register it, deploy it, smoke-test it, move the alias.

    Args:
        model: the model directory (a Hugging Face directory URL); "" means train's,
            ``<train_dir>/model``.
        eval_dir: evaluate's output folder (metrics.json).
        train_dir: train's output folder (stats.json: val_loss_start, val_loss_end).
        output: the serve stage's output folder (stats.json, report.md, server.log).
        gate: thresholds, metric path -> rules, e.g. {"humaneval.greedy.pass@1": {"min": 0.1}};
            {} means codemill's default (training lowered val loss, perplexity finite).
        target: "local" (start `codemill serve` in this task and smoke it), "kubernetes"
            (roll the inference Deployment, smoke it through its Service) or "auto"
            (kubernetes inside a cluster, local under kfp.local).
        options: other RolloutConfig fields (namespace, deployment, service_url, ...); numbers
            KFP turned into floats are coerced back, unknown keys fail.
        tracking_uri: MLflow tracking/registry URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.

    Returns:
        The command that serves the model by hand.
    """
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "serve-rollout",
        options,
        overrides={"target": target, **({"gate": gate} if gate else {})},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        model=model,
        eval_dir=eval_dir,
        train_dir=train_dir,
    )
    publish_kfp(output, stats, metrics, report)
    return stats["serve_command"]

"""KFP face of the sft stage: one GPU step that instruction-tunes a base model."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def sft_model(
    model: str,
    data: str,
    output: str,
    preset: str,
    options: dict,
    seed: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Fine-tune ``model`` on chat examples; writes model/, checkpoints/, quarantine/, stats.json and report.md.

    The pipeline gives this task its GPU with ``components._common.gpu_task`` (one A100 for the
    ``deepseek-coder-6.7b-lora`` preset). A preempted or retried step resumes from the latest
    checkpoint in ``output``.

    Args:
        model: the base: a model folder URL (train's output + /model), s3://..., models:/NAME@ALIAS
            (resolved in the MLflow registry at ``tracking_uri``) or a hub id.
        data: comma-separated folder URLs: synth's output (data/*.parquet) and/or tasks' (tasks/*.parquet).
        output: the stage's output URL.
        preset: named preset (tiny, deepseek-coder-6.7b-lora).
        options: SftConfig overrides (e.g. {"max_steps": 200, "lora": true}); numbers KFP turned
            into floats are coerced back, unknown keys fail.
        seed: held-out choice, data order, LoRA init.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI); also the model registry.
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "sft",
        options,
        overrides={"preset": preset, "seed": seed},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        model=model,
        data=data,
        registry_uri=tracking_uri,
    )
    publish_kfp(output, stats, metrics, report)
    return output

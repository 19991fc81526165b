"""KFP faces of the recipes' own steps (codemill.recipes.r1; docs/pipelines.md): a served teacher for
synth, sft on the data that exists, and r1's comparison across stages."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Metrics, Output

from components._common import CPU_IMAGE, CUDA_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def r1_synth(
    teacher: str,
    tasks: str,
    problems: str,
    output: str,
    seed: int,
    options: dict,
    target: str,
    teacher_deployment: dict,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
    sandbox_url: str = "",
) -> str:
    """Synth distill with a model of this run as the teacher, served for the length of the step.

    Args:
        teacher: the stage folder of the teacher model (its model/ is served).
        tasks: the tasks stage's output folder ("" for none).
        problems: stdin/stdout problems JSONL, "bundled" (the 13 shipped) or "" for none.
        output: the stage's output folder (synth's data/, quarantine/, stats.json, report.md, teacher.log).
        seed: random seed.
        options: SynthConfig overrides (samples_per_task, max_tokens, ...); mode and teacher_url are set here.
        target: "local" (``codemill serve`` on 127.0.0.1 in this step), "kubernetes" (roll the chart's teacher
            Deployment to the model) or "auto" (kubernetes inside a cluster).
        teacher_deployment: kubernetes: codemill.serve.local.TeacherDeployment fields (namespace, deployment,
            container, model_env, service_url, timeout_s); {} takes the chart's defaults.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        sandbox_url: the pipelines' sandbox service URL; "" runs the sandbox in this step. An
            explicit ``options["sandbox_url"]`` wins.
    """
    from codemill.recipes import r1
    from codemill.stage import publish_kfp
    from codemill.verify.client import with_sandbox_url

    options = with_sandbox_url(options, sandbox_url)
    stats = r1.served_synth(
        teacher, output, options, seed, tasks, problems, target, teacher_deployment, tracking_uri, parent_run_id
    )
    publish_kfp(output, {k: v for k, v in stats.items() if k != "teacher"}, metrics, report)
    return output


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def sft_on_kept(
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
    """sft of ``model`` on the folders of ``data`` that kept samples (a skipped synth is left out);
    when none did, a recorded skip that hands ``model`` on as this stage's model/
    (codemill.recipes.r1.sft_or_skip). The pipeline gives it a GPU with ``gpu_task``.

    Args:
        model: the base model (a folder URL, s3://..., models:/NAME@ALIAS or a hub id).
        data: comma-separated stage folders (synth's and/or tasks' output).
        output: the stage's output URL.
        preset: sft preset (tiny, deepseek-coder-6.7b-lora).
        options: SftConfig overrides.
        seed: held-out choice, data order, LoRA init.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI); also the model registry.
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill.recipes import r1
    from codemill.stage import publish_kfp

    stats = r1.sft_or_skip(model, data, output, preset, options, seed, tracking_uri, parent_run_id)
    publish_kfp(output, stats, metrics, report)
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def r1_compare(
    run_dir: str,
    output: str,
    stages: list,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    markdown: Output[Markdown],
) -> NamedTuple("Best", model=str, eval_dir=str, stage_dir=str, stage=str):
    """Every stage's model side by side; each registered as its own MLflow version tagged with its stage.

    Args:
        run_dir: the run's folder (each stage's model at <run_dir>/<stage>/model, its evaluation at
            <run_dir>/<stage>_evaluate).
        output: the comparison's folder (report.md, report.html, stats.json).
        stages: the stages to compare, in chain order.
        options: CompareConfig overrides (registered_model, rank_by).
        tracking_uri: MLflow tracking/registry URI.
        parent_run_id: the pipeline's MLflow parent run.

    Returns:
        The best model's folder, its evaluation, its stage folder and the stage's name (for the rollout).
    """
    from collections import namedtuple

    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "r1-compare",
        options,
        overrides={"stages": list(stages)},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        run_dir=run_dir,
    )
    flat = {f"{r['stage']}.{b}.pass_at_1": v for r in stats["stages"] for b, v in r["pass@1"].items()}
    publish_kfp(output, flat, metrics, report, report_name="report.html")
    publish_kfp(output, {}, None, markdown)
    best = stats["best"]
    return namedtuple("Best", "model eval_dir stage_dir stage")(
        best["model"], best["eval_dir"], best["stage_dir"], best["stage"]
    )

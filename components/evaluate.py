"""KFP face of the evaluate stage: a GPU step that generates, a CPU step that scores in the sandbox."""

from kfp import dsl
from kfp.dsl import HTML, Metrics, Output

from components._common import CPU_IMAGE, CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def eval_generate(
    train: str, pack: str, output: str, options: dict, seed: int, tracking_uri: str, parent_run_id: str, tasks: str = ""
) -> str:
    """Generate completions for the code benchmarks and measure held-out FIM exact match and
    perplexity; writes samples/*.jsonl and generation.json into ``output``.

    Args:
        train: train's output URL; the model is its model/ folder.
        pack: pack's output URL (held-out documents, val tokens); "" skips the held-out metrics.
        output: the stage's output URL (shared with eval_score).
        options: EvalConfig overrides (e.g. {"limit": 20, "max_new_tokens": 64}); numbers that
            KFP turned into floats are coerced back, unknown keys fail.
        seed: sampling and span choice.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        tasks: the tasks stage's output folder: its held-out split is scored per kind; "" for none.
    """
    from codemill import io, runner

    runner.from_kfp(
        "evaluate-generate",
        options,
        overrides={"seed": seed},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        model=io.join(train, "model"),
        pack=pack,
        tasks=tasks,
    )
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def eval_score(
    output: str,
    options: dict,
    seed: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[HTML],
    sandbox_url: str = "",
) -> str:
    """Run every generated sample in the sandbox (or on the sandbox service); write
    results.jsonl, metrics.json, report.html and stats.json into ``output``.

    Args:
        output: the stage's output URL (eval_generate's samples are read from it).
        options: EvalConfig overrides, the same dict eval_generate got.
        seed: recorded with the config.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        sandbox_url: the pipelines' sandbox service URL; "" runs the sandbox in this step. An
            explicit ``options["sandbox_url"]`` wins.
    """
    from codemill import runner
    from codemill.evaluate.score_step import tracking_metrics
    from codemill.stage import publish_kfp
    from codemill.verify.client import with_sandbox_url

    stats = runner.from_kfp(
        "evaluate-score",
        with_sandbox_url(options, sandbox_url),
        overrides={"seed": seed},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    publish_kfp(output, tracking_metrics(stats), metrics, report, report_name="report.html")
    return output

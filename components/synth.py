"""KFP face of the synth stage: one task, no fan-out (the response cache under the output
folder is what makes a retried task cheap: it resends nothing it already has).

With ``teacher_url == ""`` the step records that it was skipped and why, and succeeds, so
the pipeline can always include it. A teacher API key reaches the pod as an environment
variable from a Secret (``kubernetes.use_secret_as_env`` in the pipeline), named by
``options["teacher_api_key_env"]``.
"""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def synth(
    mode: str,
    input: str,
    tasks: str,
    problems: str,
    output: str,
    teacher_url: str,
    teacher_model: str,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
    sandbox_url: str = "",
) -> str:
    """Ask the teacher, keep only the answers the sandbox verifies, write data/ for SFT.

    Args:
        mode: "oss-instruct" (problems from corpus seeds) or "distill" (answers to tasks/problems).
        input: oss-instruct: dedup's output folder (files/*.parquet); "" otherwise.
        tasks: distill: the tasks stage's output folder; "" for none.
        problems: distill: a stdin/stdout problems JSONL (LiveCodeBench / rStar-Coder); "" for none.
        output: the stage's output folder (data/, quarantine/, stats.json, report.md, _cache/).
        teacher_url: an OpenAI-compatible endpoint; "" skips the step (recorded in stats.json).
        teacher_model: the model name sent to the teacher.
        seed: random seed (seeds, request seeds, MinHash).
        options: other SynthConfig fields (e.g. {"max_samples": 1000, "samples_per_task": 4}); numbers
            KFP turned into floats are coerced back, unknown keys fail.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        sandbox_url: the pipelines' sandbox service URL; "" runs the sandbox in this step. An
            explicit ``options["sandbox_url"]`` wins.

    Returns:
        The output folder (its data/ is SFT's --data).
    """
    from codemill import runner
    from codemill.stage import publish_kfp
    from codemill.verify.client import with_sandbox_url

    stats = runner.from_kfp(
        "synth",
        with_sandbox_url(options, sandbox_url),
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        overrides={"mode": mode, "teacher_url": teacher_url, "teacher_model": teacher_model, "seed": seed},
        input=input or None,
        tasks=tasks or None,
        problems=problems or None,
    )
    publish_kfp(output, stats, metrics, report)
    return output

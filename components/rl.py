"""KFP face of the rl stage: one GPU step (one pod, torchrun over its GPUs, or a TrainJob over nodes)."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def rl_model(
    model: str,
    tasks: str,
    output: str,
    options: dict,
    seed: int,
    gpu_count: int,
    num_nodes: int,
    gpu_node_selector: dict,
    gpu_tolerations: list,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
    image: str = "",
    problems: str = "",
    sandbox_url: str = "",
) -> str:
    """RL on sandbox-executed rewards; writes model/, rollouts/, checkpoints/, stats.json and report.md.

    A retried step resumes from the latest checkpoint in ``output``.

    Args:
        model: the starting model folder (sft's ``model/``).
        tasks: the tasks stage's output folder ("" trains on ``options["problems"]``, or the bundled problems).
        output: the stage's output URL.
        options: RLConfig overrides (e.g. {"max_steps": 20, "problems": "s3://b/problems.jsonl"}).
        seed: task order and sampling.
        gpu_count: GPUs per pod (torchrun over them when > 1); per node when num_nodes > 1.
        num_nodes: nodes; > 1 launches a Kubeflow Trainer TrainJob (train's launcher) and waits for it.
        gpu_node_selector: node selector of the A100 pool, forwarded to the TrainJob's pods.
        gpu_tolerations: tolerations of the A100 pool, forwarded to the TrainJob's pods.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        image: the image the TrainJob's pods run; needed when num_nodes > 1.
        problems: stdin/stdout problems to train on next to ``tasks`` (RLConfig.problems; "bundled" = the 13
            shipped ones); "" keeps ``options["problems"]``.
        sandbox_url: the pipelines' sandbox service URL; "" runs the sandbox in this step. An
            explicit ``options["sandbox_url"]`` wins.
    """
    from codemill import runner
    from codemill.rl.launch import run_step
    from codemill.stage import publish_kfp
    from codemill.verify.client import with_sandbox_url

    # the launcher is the entry, as for train: it may start torchrun or a TrainJob whose ranks
    # each run the `rl` step; on one device it runs the step through the runner in process
    config = runner.kfp_config(
        "rl", with_sandbox_url(options, sandbox_url), {"seed": seed, **({"problems": problems} if problems else {})}
    )
    stats = run_step(
        config,
        model,
        tasks,
        output,
        gpu_count=gpu_count,
        num_nodes=num_nodes,
        node_selector=gpu_node_selector,
        tolerations=gpu_tolerations,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        image=image,
    )
    publish_kfp(output, {k: v for k, v in stats.items() if k not in ("monitors", "config")}, metrics, report)
    return output

"""KFP face of the train stage: one step that trains (one pod, or a TrainJob over several nodes)."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CUDA_IMAGE


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_model(
    input: str,
    output: str,
    preset: str,
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
) -> str:
    """Train a causal LM on pack's shards; writes model/, checkpoints/, stats.json and report.md.

    A retried step resumes from the latest checkpoint in ``output``.

    Args:
        input: pack's output folder.
        output: the stage's output URL.
        preset: named preset (tiny, deepseek-coder-1.3b, deepseek-coder-6.7b).
        options: TrainConfig overrides (e.g. {"max_steps": 50, "deepspeed": "zero2"}).
        seed: model init and data order.
        gpu_count: GPUs per pod (torchrun over them when > 1); per node when num_nodes > 1.
        num_nodes: nodes; > 1 launches a Kubeflow Trainer TrainJob and waits for it.
        gpu_node_selector: node selector of the A100 pool, forwarded to the TrainJob's pods.
        gpu_tolerations: tolerations of the A100 pool, forwarded to the TrainJob's pods.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        image: the image the TrainJob's pods run (the pipeline passes components._common.CUDA_IMAGE);
            needed when num_nodes > 1.
    """
    from codemill import runner
    from codemill.stage import publish_kfp
    from codemill.train import run_step

    # the launcher, not the runner, is the entry: it may start torchrun or a TrainJob, whose
    # processes each run the `train` step (codemill.train.launch)
    config = runner.kfp_config("train", options, {"preset": preset, "seed": seed})
    stats = run_step(
        config,
        input,
        output,
        gpu_count=gpu_count,
        num_nodes=num_nodes,
        node_selector=gpu_node_selector,
        tolerations=gpu_tolerations,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        image=image,
    )
    publish_kfp(output, stats, metrics, report)
    return output

"""The standalone post-training pipeline: a base model in, an instruction-tuned, RL-trained model served.

Started from the KFP UI with just ``base_model`` (docs/pipelines.md): validate -> dedup ->
tasks on ``source`` mine the tasks; then synth -> sft -> rl -> evaluate -> the gated
rollout (pipelines/posttrain.py, the same wiring the default pipeline uses after train).
Compiled to ``pipelines/compiled/posttrain.yaml``.
"""

from kfp import dsl

from components._common import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS
from pipelines.data import add_validate_dedup, run_frame
from pipelines.posttrain import (
    RL_OPTIONS,
    SFT_OPTIONS,
    SYNTH_OPTIONS,
    TASKS_OPTIONS,
    PostTrainParams,
    add_post_training,
    add_tasks,
)

PIPELINE_NAME = "posttrain"


@dsl.pipeline(
    name=PIPELINE_NAME, description="A base model in: tasks mined from source, synth, sft, rl, evaluate, gated rollout."
)
def posttrain_pipeline(
    base_model: str = "models:/codemill@champion",
    source: str = "site-packages",
    work_root: str = "s3://codemill/runs",
    run_name: str = "",
    num_shards: int = 2,
    seed: int = 0,
    tracking_uri: str = "",
    sandbox_url: str = "",
    validate_options: dict = {"max_repos": 40},
    dedup_options: dict = {"threshold": 0.7},
    tasks_options: dict = TASKS_OPTIONS,
    synth_mode: str = "oss-instruct",
    teacher_url: str = "",
    teacher_model: str = "teacher",
    synth_options: dict = SYNTH_OPTIONS,
    sft_preset: str = "tiny",
    sft_options: dict = SFT_OPTIONS,
    rl_options: dict = RL_OPTIONS,
    eval_options: dict = {"prompt_style": "chat", "limit": 20, "max_new_tokens": 64, "benchmarks": ["humaneval"]},
    serve_gate: dict = {"humaneval.greedy.tasks_total": {"min": 1}},
    serve_target: str = "auto",
    serve_options: dict = {"registered_model": "codemill-instruct"},
    num_nodes: int = 1,
    gpu_count: str = "1",
    train_cpu: str = "8",
    train_memory: str = "64Gi",
    eval_cpu: str = "8",
    eval_memory: str = "64Gi",
    score_cpu: str = "8",
    score_memory: str = "16Gi",
    gpu_node_selector: dict = DEFAULT_GPU_NODE_SELECTOR,
    gpu_tolerations: list = DEFAULT_GPU_TOLERATIONS,
):
    """Args:
    base_model: the model to post-train: models:/NAME@ALIAS (default: the pretraining pipeline's champion),
        s3://... or a folder URL of a Hugging Face model, or a hub id where a hub is reachable.
    source: where the tasks are mined from: "site-packages", a folder of repositories, or JSONL/Parquet URL(s).
    work_root: URL under which the run writes every stage's output (s3:// on a cluster).
    run_name: the run's folder under work_root; empty means the KFP run id.
    num_shards: fan-out of the data stages.
    seed: one seed for every stage.
    tracking_uri: MLflow tracking URI; empty means $MLFLOW_TRACKING_URI; "none" disables tracking.
    sandbox_url: the sandbox service (codemill sandbox serve) for every step that runs corpus or model
        code (tasks-shard, synth, rl, eval-score); "" runs the sandbox inside each step. A step's own
        options["sandbox_url"] wins (docs/pipelines.md).
    validate_options: ValidateConfig overrides.
    dedup_options: DedupConfig overrides.
    tasks_options: TasksConfig overrides.
    synth_mode: "oss-instruct" or "distill".
    teacher_url: synth's teacher; "" skips synth (recorded in its stats.json).
    teacher_model: the model name sent to the teacher.
    synth_options: SynthConfig overrides.
    sft_preset: sft preset (tiny, deepseek-coder-6.7b-lora).
    sft_options: SftConfig overrides.
    rl_options: RLConfig overrides.
    eval_options: EvalConfig of the post-trained model (instruct mode; no pack here, so no held-out perplexity).
    serve_gate: absolute rules; the champion comparison follows.
    serve_target: "kubernetes" in a cluster, "local" under kfp.local; "auto" picks.
    serve_options: RolloutConfig fields; the registered model defaults to codemill-instruct, whose
        champion was measured the same way (a base model's champion has held-out perplexity, which
        this pipeline does not measure).
    num_nodes: rl nodes; > 1 runs a Kubeflow Trainer TrainJob.
    gpu_count: GPUs per GPU task (a string: resource placeholders resolve only from strings).
    train_cpu: CPU request (and limit) of the sft and rl pods.
    train_memory: memory request (and limit) of the sft and rl pods.
    eval_cpu: CPU request (and limit) of the evaluate generation pod.
    eval_memory: memory request (and limit) of the evaluate generation pod.
    score_cpu: CPU request (and limit) of the evaluate scoring pod.
    score_memory: memory request (and limit) of the evaluate scoring pod.
    gpu_node_selector: node selector of the A100 pool.
    gpu_tolerations: tolerations for the A100 pool's taints.
    """
    frame = run_frame(PIPELINE_NAME, work_root, run_name, tracking_uri, num_shards, gpu_count, "posttrain")
    with frame as (layout, tracking):
        post = PostTrainParams(
            seed=seed,
            num_shards=num_shards,
            tasks_options=tasks_options,
            synth_mode=synth_mode,
            teacher_url=teacher_url,
            teacher_model=teacher_model,
            synth_options=synth_options,
            sft_preset=sft_preset,
            sft_options=sft_options,
            rl_options=rl_options,
            eval_options=eval_options,
            serve_gate=serve_gate,
            serve_target=serve_target,
            serve_options=serve_options,
            num_nodes=num_nodes,
            gpu_count=gpu_count,
            gpu_node_selector=gpu_node_selector,
            gpu_tolerations=gpu_tolerations,
            train_cpu=train_cpu,
            train_memory=train_memory,
            eval_cpu=eval_cpu,
            eval_memory=eval_memory,
            score_cpu=score_cpu,
            score_memory=score_memory,
            sandbox_url=sandbox_url,
        )
        deduped = add_validate_dedup(layout, tracking, source, num_shards, seed, validate_options, dedup_options)
        tasks = add_tasks(layout, tracking, deduped.outputs["Output"], post)
        add_post_training(layout, tracking, deduped.outputs["Output"], tasks.outputs["Output"], base_model, "", post)

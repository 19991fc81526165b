"""The codemill pipeline: wiring only. Each stage's work lives in ``codemill.<stage>``.

Pretraining (validate -> dedup -> pack -> train -> evaluate -> serve), then post-training
on the pretrained model (tasks after dedup; synth -> sft -> rl -> evaluate -> serve after
train; pipelines/posttrain.py, docs/pipelines.md).

The same function runs on a cluster (compiled to ``pipelines/compiled/codemill.yaml``)
and on a laptop through ``kfp.local`` (``codemill pipeline run --local``).

kfp.local quirks this layout works around (kfp 2.16):
- a task cannot depend on a ``ParallelFor`` at the same level, so every fan-out is a
  sub-pipeline and the merge task waits on that sub-pipeline;
- ``dsl.If`` on a task output always evaluates false locally, so the serve gate is
  decided inside the serve step (it records why it did or did not roll out);
- kfp.local cannot fill a ``dsl.PipelineTaskFinalStatus``; ``pipeline_cli.init_local``
  supplies "SUCCEEDED" (a local run stops at its first failure, so an exit task that runs
  saw every task succeed).

Every resource field fed from a pipeline parameter (GPU count, CPU and memory requests
and limits) takes a STRING parameter: the KFP 2.17 driver resolves resource placeholders
only from strings and silently drops any other (docs/deploy.md).
"""

from kfp import dsl, kubernetes

from components._common import CUDA_IMAGE, DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, cpu_task, gpu_task
from components.evaluate import eval_generate, eval_score
from components.pack import pack_finish, pack_shards, pack_tokenizer
from components.serve import serve_rollout
from components.train import train_model
from pipelines.data import add_validate_dedup, run_frame
from pipelines.posttrain import (
    POSTTRAIN_EVAL_OPTIONS,
    POSTTRAIN_GATE,
    RL_OPTIONS,
    SFT_OPTIONS,
    SYNTH_OPTIONS,
    TASKS_OPTIONS,
    PostTrainParams,
    add_post_training,
    add_tasks,
)

PIPELINE_NAME = "codemill"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Source repositories in, a served code model out: DeepSeek-Coder pretraining, then "
    "post-training (tasks, synth, sft, rl) of the pretrained model.",
)
def codemill_pipeline(
    source: str = "site-packages",
    work_root: str = "s3://codemill/runs",
    run_name: str = "",
    num_shards: int = 2,
    seed: int = 0,
    tracking_uri: str = "",
    sandbox_url: str = "",
    validate_options: dict = {"max_repos": 40},
    dedup_options: dict = {"threshold": 0.7},
    pack_options: dict = {"seq_len": 512, "vocab_size": 8192},
    train_preset: str = "tiny",
    train_options: dict = {},
    eval_options: dict = {"limit": 20, "max_new_tokens": 64},
    num_nodes: int = 1,
    serve_gate: dict = {},
    serve_target: str = "auto",
    serve_options: dict = {},
    tasks_options: dict = TASKS_OPTIONS,
    synth_mode: str = "oss-instruct",
    teacher_url: str = "",
    teacher_model: str = "teacher",
    synth_options: dict = SYNTH_OPTIONS,
    sft_preset: str = "tiny",
    sft_options: dict = SFT_OPTIONS,
    rl_options: dict = RL_OPTIONS,
    posttrain_eval_options: dict = POSTTRAIN_EVAL_OPTIONS,
    posttrain_serve_gate: dict = POSTTRAIN_GATE,
    posttrain_serve_options: dict = {},
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
    source: "site-packages", a folder of repositories, or JSONL/Parquet URL(s) in The Stack's layout.
    work_root: URL under which the run writes every stage's output (s3:// on a cluster).
    run_name: the run's folder under work_root; empty means the KFP run id.
    num_shards: fan-out of the data stages.
    seed: one seed for every stage; same inputs and seed give the same outputs.
    tracking_uri: MLflow tracking URI; empty means $MLFLOW_TRACKING_URI; "none" disables tracking.
    sandbox_url: the sandbox service (codemill sandbox serve) for every step that runs corpus or model
        code (tasks-shard, synth, rl, eval-score); "" runs the sandbox inside each step. A step's own
        options["sandbox_url"] wins (docs/pipelines.md).
    validate_options: ValidateConfig overrides.
    dedup_options: DedupConfig overrides.
    pack_options: PackConfig overrides (seq_len, vocab_size, fim_rate, spm_rate, val_fraction, tokenizer, ...).
    train_preset: tiny (CPU) or deepseek-coder-1.3b / deepseek-coder-6.7b (GPUs).
    train_options: TrainConfig overrides, e.g. {"max_steps": 50, "deepspeed": "zero2"}.
    eval_options: EvalConfig overrides ({"limit": 20, "max_new_tokens": 64} for a quick run;
        {} for all of HumanEval).
    num_nodes: training nodes; > 1 runs a Kubeflow Trainer TrainJob with gpu_count GPUs per node.
    serve_gate: rollout thresholds, {"metric.path": {"min"|"max"|"gt"|"lt": x, "finite": true}};
        {} means the default gate (training lowered val loss, held-out perplexity finite).
    serve_target: "kubernetes" in a cluster, "local" under kfp.local; "auto" picks.
    serve_options: other RolloutConfig fields (smoke_max_tokens, rollout_timeout_s, ...).
    tasks_options: TasksConfig overrides (kinds, max_tasks, ...); the tasks are mined from dedup's output.
    synth_mode: "oss-instruct" (problems from corpus seeds) or "distill" (answers to the tasks).
    teacher_url: synth's OpenAI-compatible teacher; "" skips synth (recorded in its stats.json).
    teacher_model: the model name sent to the teacher.
    synth_options: SynthConfig overrides (max_samples, samples_per_task, teacher_api_key_env, ...).
    sft_preset: sft preset (tiny, deepseek-coder-6.7b-lora).
    sft_options: SftConfig overrides (max_steps, lr, lora, ...).
    rl_options: RLConfig overrides (max_steps, num_generations, loss, problems, ...).
    posttrain_eval_options: EvalConfig of the post-trained model (instruct mode: prompt_style chat).
    posttrain_serve_gate: absolute rules for the post-trained model; the champion comparison follows.
    posttrain_serve_options: RolloutConfig fields of the post-trained model's rollout.
    gpu_count: GPUs per GPU task (a string, like every resource parameter: see the module docstring).
    train_cpu: CPU request (and limit) of the train pod, a Kubernetes quantity ("8", "500m").
    train_memory: memory request (and limit) of the train pod ("64Gi").
    eval_cpu: CPU request (and limit) of the evaluate generation pod (the GPU one).
    eval_memory: memory request (and limit) of the evaluate generation pod.
    score_cpu: CPU request (and limit) of the evaluate scoring pod (the sandbox runs there).
    score_memory: memory request (and limit) of the evaluate scoring pod.
    gpu_node_selector: node selector of the A100 pool (GKE, EKS or GPU feature discovery labels).
    gpu_tolerations: tolerations for the A100 pool's taints.
    """
    frame = run_frame(PIPELINE_NAME, work_root, run_name, tracking_uri, num_shards, gpu_count, "codemill")
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
            eval_options=posttrain_eval_options,
            serve_gate=posttrain_serve_gate,
            serve_target=serve_target,
            serve_options=posttrain_serve_options,
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

        planned = cpu_task(
            pack_tokenizer(
                input=deduped.outputs["Output"], output=layout["pack_dir"], seed=seed, options=pack_options, **tracking
            ),
            cpu="2",
            memory="8Gi",
        )
        pack_parts = pack_shards(
            input=deduped.outputs["Output"],
            output=planned.output,
            shards=layout["shards"],
            world_size=num_shards,
            seed=seed,
            options=pack_options,
            **tracking,
        )
        packed = cpu_task(
            pack_finish(output=layout["pack_dir"], world_size=num_shards, **tracking), cpu="1", memory="4Gi"
        ).after(pack_parts)

        tasks = add_tasks(layout, tracking, deduped.outputs["Output"], post)

        trained = gpu_task(
            train_model(
                input=packed.outputs["Output"],
                output=layout["train_dir"],
                preset=train_preset,
                options=train_options,
                seed=seed,
                gpu_count=layout["gpu_count"],
                num_nodes=num_nodes,
                gpu_node_selector=gpu_node_selector,
                gpu_tolerations=gpu_tolerations,
                image=CUDA_IMAGE,
                **tracking,
            ),
            gpu_count,
            gpu_node_selector,
            gpu_tolerations,
            cpu=train_cpu,
            memory=train_memory,
        )
        trained.set_retry(num_retries=3, backoff_duration="60s")  # a retry resumes from the latest checkpoint

        generated = gpu_task(
            eval_generate(
                train=trained.outputs["Output"],
                pack=packed.outputs["Output"],
                output=layout["eval_dir"],
                options=eval_options,
                seed=seed,
                **tracking,
            ),
            gpu_count,
            gpu_node_selector,
            gpu_tolerations,
            cpu=eval_cpu,
            memory=eval_memory,
        )
        evaluated = cpu_task(
            eval_score(output=generated.output, options=eval_options, seed=seed, sandbox_url=sandbox_url, **tracking),
            cpu=score_cpu,
            memory=score_memory,
        )

        served = cpu_task(
            serve_rollout(
                model="",
                eval_dir=evaluated.outputs["Output"],
                train_dir=trained.outputs["Output"],
                output=layout["serve_dir"],
                gate=serve_gate,
                target=serve_target,
                options=serve_options,
                **tracking,
            ),
            cpu="2",
            memory="8Gi",
        )
        served.set_caching_options(False)  # moves the registry alias and patches the Deployment
        kubernetes.use_secret_as_env(
            served, "codemill-inference-api-key", {"api-key": "CODEMILL_API_KEY"}, optional=True
        )

        # post-training of the pretrained model; its rollout waits for pretraining's, so the
        # champion it is compared with is the best model so far
        post_served = add_post_training(
            layout,
            tracking,
            deduped.outputs["Output"],
            tasks.outputs["Output"],
            f"{trained.outputs['Output']}/model",
            packed.outputs["Output"],
            post,
        )
        post_served.after(served)

"""DeepSeek-R1's multi-stage post-training as one pipeline (docs/pipelines.md, "r1").

1. rl from the base model (execution reward plus a format reward: a ``<think>`` block, then
   one code block) -> ``r1_zero``;
2. cold-start data: synth distill with the stage-1 model as the teacher, served inside the
   step, kept only when execution verifies it -> ``r1_coldstart``;
3. sft of the base on the cold-start data -> ``r1_sft_cold``; 4. rl again from it -> ``r1_rl``;
5. rejection sampling (synth distill from the stage-4 model) -> ``r1_rejection``, and sft of
   the stage-3 model on it -> ``r1_sft_rejection``;
6. distillation: sft of a smaller student on the stage-5 data -> ``r1_distill``.

Every model is evaluated with the same benchmarks (``<stage>_evaluate``), compared and
registered per stage (``r1_compare``); the gated rollout serves the best (``r1_serve``).
An sft whose data kept no sample records a skip and hands its base model on
(codemill.recipes.r1.sft_or_skip). Compiled to ``pipelines/compiled/r1.yaml``.
"""

from kfp import dsl, kubernetes

from components._common import CUDA_IMAGE, DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, cpu_task, gpu_task
from components.recipes import r1_compare, r1_synth, sft_on_kept
from components.rl import rl_model
from pipelines.data import add_validate_dedup, run_frame
from pipelines.posttrain import TASKS_OPTIONS, PostTrainParams, add_tasks, evaluate_model, rollout

PIPELINE_NAME = "r1"
MODEL_STAGES = ["r1_zero", "r1_sft_cold", "r1_rl", "r1_sft_rejection", "r1_distill"]


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="DeepSeek-R1's chain: RL from the base, cold-start SFT, RL, rejection sampling + SFT, "
    "distillation; every stage evaluated, registered and compared; the best served.",
)
def r1_pipeline(
    base_model: str = "models:/codemill@champion",
    student_model: str = "models:/codemill@champion",
    problems: str = "bundled",
    source: str = "site-packages",
    work_root: str = "s3://codemill/runs",
    run_name: str = "",
    num_shards: int = 2,
    seed: int = 0,
    tracking_uri: str = "",
    sandbox_url: str = "",
    validate_options: dict = {"max_repos": 12},
    dedup_options: dict = {"threshold": 0.7},
    tasks_options: dict = TASKS_OPTIONS,
    zero_options: dict = {
        "max_steps": 2,
        "num_generations": 4,
        "prompts_per_step": 2,
        "max_completion_tokens": 48,
        "heldout_tasks": 4,
        "eval_every": 0,
        "eval_generations": 1,
        "format_weight": 0.1,
    },
    rl_options: dict = {
        "max_steps": 2,
        "num_generations": 4,
        "prompts_per_step": 2,
        "max_completion_tokens": 48,
        "heldout_tasks": 4,
        "eval_every": 0,
        "eval_generations": 1,
        "format_weight": 0.1,
    },
    coldstart_options: dict = {"samples_per_task": 1, "max_tasks": 6, "max_tokens": 96, "kinds": ["generate"]},
    rejection_options: dict = {"samples_per_task": 2, "max_tasks": 6, "max_tokens": 96, "kinds": ["generate"]},
    teacher_target: str = "auto",
    teacher_deployment: dict = {},
    sft_preset: str = "tiny",
    sft_options: dict = {"max_steps": 10},
    student_preset: str = "tiny",
    student_options: dict = {"max_steps": 10},
    eval_options: dict = {"limit": 4, "max_new_tokens": 48, "benchmarks": ["humaneval", "stdio"]},
    compare_options: dict = {},
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
    base_model: the base (models:/NAME@ALIAS, s3://..., a folder URL or a hub id); default: pretraining's champion.
    student_model: the smaller model distilled into at stage 6 (deepseek-coder-1.3b base on a cluster);
        locally the tiny champion again.
    problems: stdin/stdout problems JSONL (LiveCodeBench / rStar-Coder layout, local or s3://) trained on and
        distilled next to the mined tasks; "bundled" = the 13 shipped with codemill; "" for none.
    source: where the tasks are mined from ("site-packages", a folder of repositories, JSONL/Parquet URLs).
    work_root: URL under which the run writes every stage's output (s3:// on a cluster).
    run_name: the run's folder under work_root; empty means the KFP run id.
    num_shards: fan-out of the data stages.
    seed: one seed for every stage.
    tracking_uri: MLflow tracking URI; empty means $MLFLOW_TRACKING_URI; "none" disables tracking.
    sandbox_url: the sandbox service (codemill sandbox serve) for every step that runs corpus or model
        code (tasks-shard, rl, the distill steps, eval-score); "" runs the sandbox inside each step. A step's own
        options["sandbox_url"] wins (docs/pipelines.md).
    validate_options: ValidateConfig overrides.
    dedup_options: DedupConfig overrides.
    tasks_options: TasksConfig overrides.
    zero_options: RLConfig of stage 1 (format_weight: the <think> + code block reward).
    rl_options: RLConfig of stage 4.
    coldstart_options: SynthConfig of stage 2 (distill; samples_per_task, max_tasks, max_tokens, ...).
    rejection_options: SynthConfig of stage 5's rejection sampling.
    teacher_target: where the teacher is served: "local" (in the step), "kubernetes" (the chart's teacher
        Deployment) or "auto".
    teacher_deployment: kubernetes: TeacherDeployment fields (namespace, deployment, container, model_env,
        service_url, timeout_s); {} takes the chart's defaults.
    sft_preset: sft preset of stages 3 and 5.
    sft_options: SftConfig overrides of stages 3 and 5.
    student_preset: sft preset of stage 6.
    student_options: SftConfig overrides of stage 6.
    eval_options: EvalConfig every model is evaluated with (the tasks' held-out split is scored too).
    compare_options: CompareConfig overrides (registered_model, rank_by).
    serve_gate: absolute rules of the rollout; the champion comparison follows.
    serve_target: "kubernetes" in a cluster, "local" under kfp.local; "auto" picks.
    serve_options: RolloutConfig fields.
    num_nodes: rl nodes; > 1 runs a Kubeflow Trainer TrainJob.
    gpu_count: GPUs per GPU task (a string: resource placeholders resolve only from strings).
    train_cpu: CPU request (and limit) of the rl and sft pods.
    train_memory: memory request (and limit) of the rl and sft pods.
    eval_cpu: CPU request (and limit) of the evaluate generation pods.
    eval_memory: memory request (and limit) of the evaluate generation pods.
    score_cpu: CPU request (and limit) of the evaluate scoring pods.
    score_memory: memory request (and limit) of the evaluate scoring pods.
    gpu_node_selector: node selector of the A100 pool.
    gpu_tolerations: tolerations for the A100 pool's taints.
    """
    frame = run_frame(PIPELINE_NAME, work_root, run_name, tracking_uri, num_shards, gpu_count, "r1")
    with frame as (layout, tracking):
        p = PostTrainParams(
            seed=seed,
            num_shards=num_shards,
            tasks_options=tasks_options,
            synth_mode="distill",
            teacher_url="",
            teacher_model="",
            synth_options={},
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
        run_dir = layout["run_dir"]
        deduped = add_validate_dedup(layout, tracking, source, num_shards, seed, validate_options, dedup_options)
        tasks_dir = add_tasks(layout, tracking, deduped.outputs["Output"], p).outputs["Output"]

        def gpu(task):
            return gpu_task(task, gpu_count, gpu_node_selector, gpu_tolerations, cpu=train_cpu, memory=train_memory)

        def rl(stage: str, model, options):
            task = gpu(
                rl_model(
                    model=model,
                    tasks=tasks_dir,
                    problems=problems,
                    output=f"{run_dir}/{stage}",
                    options=options,
                    seed=seed,
                    gpu_count=layout["gpu_count"],
                    num_nodes=num_nodes,
                    gpu_node_selector=gpu_node_selector,
                    gpu_tolerations=gpu_tolerations,
                    image=CUDA_IMAGE,
                    sandbox_url=sandbox_url,
                    **tracking,
                )
            )
            return task.set_retry(num_retries=3, backoff_duration="60s")  # resumes from its latest checkpoint

        def distill(stage: str, teacher, options):
            task = cpu_task(
                r1_synth(
                    teacher=teacher,
                    tasks=tasks_dir,
                    problems=problems,
                    output=f"{run_dir}/{stage}",
                    seed=seed,
                    options=options,
                    target=teacher_target,
                    teacher_deployment=teacher_deployment,
                    sandbox_url=sandbox_url,
                    **tracking,
                ),
                cpu="4",
                memory="16Gi",
            )
            kubernetes.use_secret_as_env(
                task, "codemill-teacher-api-key", {"api-key": "CODEMILL_TEACHER_API_KEY"}, optional=True
            )
            return task

        def sft(stage: str, model, data, preset, options):
            task = gpu(
                sft_on_kept(
                    model=model,
                    data=data,
                    output=f"{run_dir}/{stage}",
                    preset=preset,
                    options=options,
                    seed=seed,
                    **tracking,
                )
            )
            return task.set_retry(num_retries=3, backoff_duration="60s")

        zero = rl("r1_zero", base_model, zero_options)
        cold = distill("r1_coldstart", zero.outputs["Output"], coldstart_options)
        sft_cold = sft("r1_sft_cold", base_model, cold.outputs["Output"], sft_preset, sft_options)
        second = rl("r1_rl", f"{sft_cold.outputs['Output']}/model", rl_options)
        rejected = distill("r1_rejection", second.outputs["Output"], rejection_options)
        sft_rejection = sft(
            "r1_sft_rejection",
            f"{sft_cold.outputs['Output']}/model",
            rejected.outputs["Output"],
            sft_preset,
            sft_options,
        )
        student = sft("r1_distill", student_model, rejected.outputs["Output"], student_preset, student_options)

        models = dict(zip(MODEL_STAGES, (zero, sft_cold, second, sft_rejection, student)))
        scored = [
            evaluate_model(
                task.outputs["Output"], f"{run_dir}/{stage}_evaluate", tasks_dir, "", eval_options, p, tracking
            )
            for stage, task in models.items()
        ]
        compared = cpu_task(
            r1_compare(
                run_dir=run_dir,
                output=f"{run_dir}/r1_compare",
                stages=MODEL_STAGES,
                options=compare_options,
                **tracking,
            ),
            cpu="2",
            memory="8Gi",
        ).after(*scored)
        compared.set_caching_options(False)  # registers model versions: a side effect
        best = compared.outputs
        rollout(
            best["model"],
            best["eval_dir"],
            best["stage_dir"],
            f"{run_dir}/r1_serve",
            serve_gate,
            serve_options,
            p,
            tracking,
        )

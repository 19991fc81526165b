"""Post-training wiring, shared by the default pipeline and the standalone ``posttrain`` pipeline.

``add_post_training`` adds, to the pipeline being defined, the tasks mined from dedup's
output, then synth (skipped with its reason when ``teacher_url`` is empty) -> sft (base:
the given model; data: the tasks, plus synth's data) -> rl (from the sft model, on the
mined tasks) -> evaluate (instruct mode, plus the tasks' held-out split) -> the gated
rollout. See docs/pipelines.md for the DAG and docs/architecture.md for the stage folders.

Synth is always wired, never under ``dsl.If``: kfp.local evaluates ``dsl.If`` on a task
output as false (pipelines/codemill_pipeline.py), so the synth step decides itself and
records "skipped: no teacher URL". Its output folder then holds no data/, and the sft
step (``components.recipes.sft_on_kept``) trains on the folders that kept samples.

``PostTrainParams.sandbox_url`` (the pipelines' ``sandbox_url`` parameter) reaches every
step that runs corpus or model code: tasks-shard, synth, rl and eval-score; a step's own
``options["sandbox_url"]`` wins over it (``codemill.verify.client.with_sandbox_url``).
"""

from dataclasses import dataclass

from kfp import dsl, kubernetes

from components._common import CUDA_IMAGE, cpu_task, gpu_task
from components.evaluate import eval_generate, eval_score
from components.recipes import sft_on_kept
from components.rl import rl_model
from components.serve import serve_rollout
from components.synth import synth
from components.tasks import tasks_finish, tasks_shards

# Defaults that keep the local tiny run within budget (docs/pipelines.md, "Timing").
TASKS_OPTIONS = {"max_tasks": 40}
SYNTH_OPTIONS = {"max_samples": 20, "samples_per_task": 2}
SFT_OPTIONS = {"max_steps": 20}
RL_OPTIONS = {
    "max_steps": 2,
    "num_generations": 4,
    "prompts_per_step": 2,
    "max_completion_tokens": 48,
    "heldout_tasks": 4,
    "eval_every": 0,
    "eval_generations": 1,
}
# Every benchmark pretraining's evaluation runs (the champion comparison needs each one it recorded).
POSTTRAIN_EVAL_OPTIONS = {"prompt_style": "chat", "limit": 20, "max_new_tokens": 64}
# The absolute rule: the evaluation ran (scored HumanEval tasks; a path without "@", which
# MLflow refuses in the param names the rollout logs its gate as). The champion
# comparison (pass@k may not fall, perplexity may not rise) is what decides.
POSTTRAIN_GATE = {"humaneval.greedy.tasks_total": {"min": 1}}


@dataclass
class PostTrainParams:
    """The pipeline parameters (channels) the post-training tasks read."""

    seed: object
    num_shards: object
    tasks_options: object
    synth_mode: object
    teacher_url: object
    teacher_model: object
    synth_options: object
    sft_preset: object
    sft_options: object
    rl_options: object
    eval_options: object
    serve_gate: object
    serve_target: object
    serve_options: object
    num_nodes: object
    gpu_count: object
    gpu_node_selector: object
    gpu_tolerations: object
    train_cpu: object
    train_memory: object
    eval_cpu: object
    eval_memory: object
    score_cpu: object
    score_memory: object
    sandbox_url: object = ""  # the sandbox service, for every step that runs corpus or model code


def add_tasks(layout, tracking: dict, deduped_dir, p: PostTrainParams) -> dsl.PipelineTask:
    """The tasks stage on dedup's output, sharded like validate; returns the finish task."""
    mined = tasks_shards(
        input=deduped_dir,
        output=layout["tasks_dir"],
        shards=layout["shards"],
        world_size=p.num_shards,
        seed=p.seed,
        options=p.tasks_options,
        sandbox_url=p.sandbox_url,
        **tracking,
    )
    return cpu_task(
        tasks_finish(
            output=layout["tasks_dir"], world_size=p.num_shards, seed=p.seed, options=p.tasks_options, **tracking
        ),
        cpu="1",
        memory="4Gi",
    ).after(mined)


def evaluate_model(model_stage, output, tasks_dir, pack_dir, options, p: PostTrainParams, tracking: dict):
    """Generate (GPU) then score (CPU) the model in the stage folder ``model_stage``; returns the score task."""
    generated = gpu_task(
        eval_generate(
            train=model_stage, pack=pack_dir, output=output, options=options, seed=p.seed, tasks=tasks_dir, **tracking
        ),
        p.gpu_count,
        p.gpu_node_selector,
        p.gpu_tolerations,
        cpu=p.eval_cpu,
        memory=p.eval_memory,
    )
    return cpu_task(
        eval_score(output=generated.output, options=options, seed=p.seed, sandbox_url=p.sandbox_url, **tracking),
        cpu=p.score_cpu,
        memory=p.score_memory,
    )


def rollout(model_dir, eval_dir, stage_dir, output, gate, options, p: PostTrainParams, tracking: dict):
    """The gated rollout (champion versus challenger), caching off, the API key from its Secret."""
    served = cpu_task(
        serve_rollout(
            model=model_dir,
            eval_dir=eval_dir,
            train_dir=stage_dir,
            output=output,
            gate=gate,
            target=p.serve_target,
            options=options,
            **tracking,
        ),
        cpu="2",
        memory="8Gi",
    )
    served.set_caching_options(False)  # moves the registry alias and patches the Deployment
    kubernetes.use_secret_as_env(served, "codemill-inference-api-key", {"api-key": "CODEMILL_API_KEY"}, optional=True)
    return served


def add_post_training(
    layout, tracking: dict, deduped_dir, tasks_dir, base_model, pack_dir, p: PostTrainParams, after: list | None = None
) -> dsl.PipelineTask:
    """synth -> sft -> rl -> evaluate -> rollout after ``tasks_dir`` (a tasks_finish output) and
    ``after`` (the tasks that make ``base_model``); returns the rollout task.

    Synth's oss-instruct seeds come from ``deduped_dir``; in distill mode it answers the tasks.

    ``pack_dir`` is pack's output ("" without one): with it the evaluation also scores held-out
    perplexity, which the champion comparison needs when the champion was recorded with it.
    """
    taught = cpu_task(
        synth(
            mode=p.synth_mode,
            input=deduped_dir,
            tasks=tasks_dir,
            problems="",
            output=layout["synth_dir"],
            teacher_url=p.teacher_url,
            teacher_model=p.teacher_model,
            seed=p.seed,
            options=p.synth_options,
            sandbox_url=p.sandbox_url,
            **tracking,
        ),
        cpu="2",
        memory="4Gi",
    )
    kubernetes.use_secret_as_env(
        taught, "codemill-teacher-api-key", {"api-key": "CODEMILL_TEACHER_API_KEY"}, optional=True
    )
    tuned = gpu_task(
        sft_on_kept(
            model=base_model,
            data=f"{tasks_dir},{taught.outputs['Output']}",
            output=layout["sft_dir"],
            preset=p.sft_preset,
            options=p.sft_options,
            seed=p.seed,
            **tracking,
        ),
        p.gpu_count,
        p.gpu_node_selector,
        p.gpu_tolerations,
        cpu=p.train_cpu,
        memory=p.train_memory,
    )
    if after:
        tuned.after(*after)
    tuned.set_retry(num_retries=3, backoff_duration="60s")  # resumes from the latest checkpoint
    reinforced = gpu_task(
        rl_model(
            model=f"{tuned.outputs['Output']}/model",
            tasks=tasks_dir,
            output=layout["rl_dir"],
            options=p.rl_options,
            seed=p.seed,
            gpu_count=layout["gpu_count"],
            num_nodes=p.num_nodes,
            gpu_node_selector=p.gpu_node_selector,
            gpu_tolerations=p.gpu_tolerations,
            image=CUDA_IMAGE,
            sandbox_url=p.sandbox_url,
            **tracking,
        ),
        p.gpu_count,
        p.gpu_node_selector,
        p.gpu_tolerations,
        cpu=p.train_cpu,
        memory=p.train_memory,
    )
    reinforced.set_retry(num_retries=3, backoff_duration="60s")
    scored = evaluate_model(
        reinforced.outputs["Output"], layout["posttrain_evaluate_dir"], tasks_dir, pack_dir, p.eval_options, p, tracking
    )
    return rollout(
        f"{reinforced.outputs['Output']}/model",
        scored.outputs["Output"],
        reinforced.outputs["Output"],
        layout["posttrain_serve_dir"],
        p.serve_gate,
        p.serve_options,
        p,
        tracking,
    )

"""KFP face of the tasks stage: one task per shard of repositories (a sub-pipeline holding the
``dsl.ParallelFor``, so the finish can wait on all of them), then one that deduplicates,
makes the tasks and reports. Wired after dedup: ``input`` is dedup's output folder."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE, cpu_task


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def tasks_shard(
    input: str,
    output: str,
    rank: int,
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    sandbox_url: str = "",
) -> str:
    """Mine one shard's repositories: candidates, static checks, sandboxed runs of the references.

    Args:
        input: dedup's (or validate's) output folder (files/*.parquet).
        output: the stage's output URL (shared by all shards).
        rank: this shard's index (repositories are assigned by hash of their name).
        world_size: number of shards.
        seed: random seed (split, shown cases, PYTHONHASHSEED values).
        options: TasksConfig fields to override (e.g. {"kinds": ["output", "input"], "max_tasks": 5000});
            numbers that KFP turned into floats are coerced back, unknown keys fail.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
        sandbox_url: the pipelines' sandbox service URL; "" runs the sandbox in this step. An
            explicit ``options["sandbox_url"]`` wins.
    """
    from codemill import runner
    from codemill.verify.client import with_sandbox_url

    runner.from_kfp(
        "tasks-shard",
        with_sandbox_url(options, sandbox_url),
        overrides={"seed": seed},
        output=output,
        rank=rank,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        input=input,
    )
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def tasks_finish(
    output: str,
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Deduplicate across shards, make the tasks, write tasks/*.parquet, stats.json and report.md."""
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "tasks-finish",
        options,
        overrides={"seed": seed},
        output=output,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    publish_kfp(output, {k: v for k, v in stats.items() if k not in ("config", "timing")}, metrics, report)
    return output


@dsl.pipeline(name="tasks-shards")
def tasks_shards(
    input: str,
    output: str,
    shards: list[int],
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
    sandbox_url: str = "",
):
    """Fan the shard step out (a sub-pipeline, so the finish can wait on the whole loop)."""
    with dsl.ParallelFor(items=shards, name="tasks-shard") as rank:
        # two CPUs: the sandboxed reference runs go two at a time (TasksConfig.workers = 0 uses the pod's quota)
        cpu_task(
            tasks_shard(
                input=input,
                output=output,
                rank=rank,
                world_size=world_size,
                seed=seed,
                options=options,
                tracking_uri=tracking_uri,
                parent_run_id=parent_run_id,
                sandbox_url=sandbox_url,
            ),
            cpu="2",
            memory="4Gi",
        )

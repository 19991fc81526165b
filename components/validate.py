"""KFP face of the validate stage: one task per shard, then one that merges them."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE, cpu_task


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_shard(
    source: str,
    output: str,
    rank: int,
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
) -> str:
    """Validate one shard of the source: keep or quarantine every record.

    Args:
        source: "site-packages", a folder of repositories, or JSONL/Parquet URL(s) (globs allowed).
        output: the stage's output URL (shared by all shards).
        rank: this shard's index.
        world_size: number of shards.
        seed: random seed.
        options: ValidateConfig fields to override (e.g. {"max_repos": 40}); numbers that KFP
            turned into floats are coerced back, unknown keys fail.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill import runner

    runner.from_kfp(
        "validate-shard",
        options,
        overrides={"seed": seed},
        output=output,
        rank=rank,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        source=source,
    )
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def validate_finish(
    output: str,
    world_size: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Merge the shards' stats, check input == kept + quarantined, write the report."""
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "validate-finish",
        None,
        output=output,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    publish_kfp(output, stats, metrics, report)
    return output


@dsl.pipeline(name="validate-shards")
def validate_shards(
    source: str,
    output: str,
    shards: list[int],
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
):
    """Fan validate out over shards (a sub-pipeline, so the merge can wait on all of them)."""
    with dsl.ParallelFor(items=shards, name="validate-shard") as rank:
        cpu_task(
            validate_shard(
                source=source,
                output=output,
                rank=rank,
                world_size=world_size,
                seed=seed,
                options=options,
                tracking_uri=tracking_uri,
                parent_run_id=parent_run_id,
            ),
            cpu="1",
            memory="4Gi",
        )

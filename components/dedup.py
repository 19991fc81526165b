"""KFP face of the dedup stage: signatures per shard, one clustering task, kept files per
shard, then one task that merges the stats. Each fan-out is its own sub-pipeline, so the
task after it can wait on the whole loop (kfp.local cannot wait on a ParallelFor at the
same level)."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE, cpu_task


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def dedup_signature_shard(
    input: str, output: str, rank: int, world_size: int, seed: int, options: dict, tracking_uri: str, parent_run_id: str
) -> str:
    """MinHash-sign every repository of one shard of validate's files.

    Args:
        input: validate's output folder (files/*.parquet).
        output: the stage's output URL (shared by all tasks).
        rank: this shard's index.
        world_size: number of shards.
        seed: random seed (the MinHash permutations).
        options: DedupConfig fields to override (e.g. {"threshold": 0.8}); numbers may arrive as
            floats (protobuf Struct) and are coerced back to each field's type.
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill import runner

    runner.from_kfp(
        "dedup-signature",
        options,
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
def dedup_cluster(output: str, world_size: int, seed: int, options: dict, tracking_uri: str, parent_run_id: str) -> str:
    """LSH + union-find over all signatures; keep one repository per cluster; find exact copies."""
    from codemill import runner

    runner.from_kfp(
        "dedup-cluster",
        options,
        overrides={"seed": seed},
        output=output,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def dedup_write_shard(
    input: str, output: str, rank: int, world_size: int, seed: int, options: dict, tracking_uri: str, parent_run_id: str
) -> str:
    """Write the kept files of one shard to <output>/files/."""
    from codemill import runner

    runner.from_kfp(
        "dedup-write",
        options,
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
def dedup_finish(
    output: str,
    world_size: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Merge the steps' stats, check input == kept + removed, write the report; returns the output URL."""
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "dedup-finish",
        None,
        output=output,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    publish_kfp(output, stats, metrics, report)
    return output


@dsl.pipeline(name="dedup-signature-shards")
def dedup_signature_shards(
    input: str,
    output: str,
    shards: list[int],
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
):
    """Fan the signature step out over shards."""
    with dsl.ParallelFor(items=shards, name="dedup-signature-shard") as rank:
        cpu_task(
            dedup_signature_shard(
                input=input,
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


@dsl.pipeline(name="dedup-write-shards")
def dedup_write_shards(
    input: str,
    output: str,
    shards: list[int],
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
):
    """Fan the write step out over shards."""
    with dsl.ParallelFor(items=shards, name="dedup-write-shard") as rank:
        cpu_task(
            dedup_write_shard(
                input=input,
                output=output,
                rank=rank,
                world_size=world_size,
                seed=seed,
                options=options,
                tracking_uri=tracking_uri,
                parent_run_id=parent_run_id,
            ),
            cpu="1",
            memory="2Gi",
        )

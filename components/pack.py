"""KFP face of the pack stage: the tokenizer (and plan), one task per shard, then the merge."""

from kfp import dsl
from kfp.dsl import Markdown, Metrics, Output

from components._common import CPU_IMAGE, cpu_task


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pack_tokenizer(input: str, output: str, seed: int, options: dict, tracking_uri: str, parent_run_id: str) -> str:
    """Plan the held-out repositories and the shards; train the BPE tokenizer (or copy options["tokenizer"]).

    Args:
        input: dedup's output folder (its files/*.parquet).
        output: the pack output URL (shared by every pack task).
        seed: random seed.
        options: PackConfig fields to override (e.g. {"seq_len": 512, "vocab_size": 8192}).
        tracking_uri: MLflow tracking URI ("" means $MLFLOW_TRACKING_URI).
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill import runner

    runner.from_kfp(
        "pack-tokenizer",
        options,
        overrides={"seed": seed},
        output=output,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
        input=input,
    )
    return output


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pack_shard(
    input: str, output: str, rank: int, world_size: int, seed: int, options: dict, tracking_uri: str, parent_run_id: str
) -> str:
    """Order, tokenize, FIM and pack the repositories of one shard.

    Args:
        input: dedup's output folder (the same the tokenizer task planned).
        output: the pack output URL.
        rank: this shard's index.
        world_size: number of shards.
        seed: random seed.
        options: PackConfig fields to override (the tokenizer task's options).
        tracking_uri: MLflow tracking URI.
        parent_run_id: the pipeline's MLflow parent run.
    """
    from codemill import runner

    runner.from_kfp(
        "pack-shard",
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
def pack_finish(
    output: str,
    world_size: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
) -> str:
    """Concatenate the shards into train/, val/, heldout/, meta.json; write stats.json and report.md."""
    from codemill import runner
    from codemill.stage import publish_kfp

    stats = runner.from_kfp(
        "pack-finish",
        None,
        output=output,
        world_size=world_size,
        tracking_uri=tracking_uri,
        parent_run_id=parent_run_id,
    )
    publish_kfp(output, stats, metrics, report)
    return output


@dsl.pipeline(name="pack-shards")
def pack_shards(
    input: str,
    output: str,
    shards: list[int],
    world_size: int,
    seed: int,
    options: dict,
    tracking_uri: str,
    parent_run_id: str,
):
    """Fan pack out over shards (a sub-pipeline, so the merge can wait on all of them)."""
    with dsl.ParallelFor(items=shards, name="pack-shard") as rank:
        cpu_task(
            pack_shard(
                input=input,
                output=output,
                rank=rank,
                world_size=world_size,
                seed=seed,
                options=options,
                tracking_uri=tracking_uri,
                parent_run_id=parent_run_id,
            ),
            cpu="2",
            memory="8Gi",
        )

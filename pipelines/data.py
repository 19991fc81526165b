"""What every codemill pipeline shares: the run's frame (start_run inside an exit handler that
closes the MLflow parent run) and the data stages (validate -> dedup), fanned out over shards."""

import contextlib

from kfp import dsl

from components._common import cpu_task
from components.dedup import dedup_cluster, dedup_finish, dedup_signature_shards, dedup_write_shards
from components.run import finish_run, start_run
from components.validate import validate_finish, validate_shards


@contextlib.contextmanager
def run_frame(name: str, work_root, run_name, tracking_uri, num_shards, gpu_count, pipeline: str):
    """Open the run inside an exit handler; yields (layout outputs, tracking kwargs for every step)."""
    # Closes the MLflow parent run with the run's final state, also when a task failed.
    closing = cpu_task(
        finish_run(
            work_root=work_root,
            run_name=run_name,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            tracking_uri=tracking_uri,
        ),
        cpu="0.5",
        memory="512Mi",
    )
    closing.set_caching_options(False)  # ends an MLflow run: a side effect
    with dsl.ExitHandler(closing, name=f"{name}-run"):
        run = cpu_task(
            start_run(
                work_root=work_root,
                run_name=run_name,
                kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                tracking_uri=tracking_uri,
                num_shards=num_shards,
                gpu_count=gpu_count,
                pipeline=pipeline,
            ),
            cpu="0.5",
            memory="512Mi",
        )
        run.set_caching_options(False)  # opens an MLflow run: a side effect
        layout = run.outputs
        yield layout, dict(tracking_uri=tracking_uri, parent_run_id=layout["parent_run_id"])


def add_validate_dedup(layout, tracking: dict, source, num_shards, seed, validate_options, dedup_options):
    """validate then dedup over ``layout["shards"]``; returns dedup's finish task."""
    shards = validate_shards(
        source=source,
        output=layout["validate_dir"],
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=validate_options,
        **tracking,
    )
    validated = cpu_task(
        validate_finish(output=layout["validate_dir"], world_size=num_shards, **tracking), cpu="1", memory="2Gi"
    ).after(shards)

    signed = dedup_signature_shards(
        input=validated.outputs["Output"],
        output=layout["dedup_dir"],
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=dedup_options,
        **tracking,
    )
    clustered = cpu_task(
        dedup_cluster(output=layout["dedup_dir"], world_size=num_shards, seed=seed, options=dedup_options, **tracking),
        cpu="2",
        memory="8Gi",
    ).after(signed)
    kept = dedup_write_shards(
        input=validated.outputs["Output"],
        output=layout["dedup_dir"],
        shards=layout["shards"],
        world_size=num_shards,
        seed=seed,
        options=dedup_options,
        **tracking,
    ).after(clustered)
    return cpu_task(
        dedup_finish(output=layout["dedup_dir"], world_size=num_shards, **tracking), cpu="1", memory="2Gi"
    ).after(kept)

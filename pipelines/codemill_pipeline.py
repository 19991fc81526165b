"""The codemill pipeline: wiring only. Each stage's work lives in ``codemill.<stage>``.

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
from components.dedup import dedup_cluster, dedup_finish, dedup_signature_shards, dedup_write_shards
from components.evaluate import eval_generate, eval_score
from components.pack import pack_finish, pack_shards, pack_tokenizer
from components.run import finish_run, start_run
from components.serve import serve_rollout
from components.train import train_model
from components.validate import validate_finish, validate_shards

PIPELINE_NAME = "codemill"


@dsl.pipeline(name=PIPELINE_NAME,
              description="Source repositories in, a served code model out (DeepSeek-Coder recipe).")
def codemill_pipeline(
    source: str = "site-packages",
    work_root: str = "s3://codemill/runs",
    run_name: str = "",
    num_shards: int = 2,
    seed: int = 0,
    tracking_uri: str = "",
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
    # Closes the MLflow parent run with the run's final state, also when a task failed.
    closing = cpu_task(finish_run(work_root=work_root, run_name=run_name, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                                  tracking_uri=tracking_uri), cpu="0.5", memory="512Mi")
    closing.set_caching_options(False)  # ends an MLflow run: a side effect
    with dsl.ExitHandler(closing, name="codemill-run"):
        run = cpu_task(start_run(work_root=work_root, run_name=run_name, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                                 tracking_uri=tracking_uri, num_shards=num_shards, gpu_count=gpu_count),
                       cpu="0.5", memory="512Mi")
        run.set_caching_options(False)  # opens an MLflow run: a side effect
        layout = run.outputs
        tracking = dict(tracking_uri=tracking_uri, parent_run_id=layout["parent_run_id"])

        shards = validate_shards(source=source, output=layout["validate_dir"], shards=layout["shards"],
                                 world_size=num_shards, seed=seed, options=validate_options, **tracking)
        validated = cpu_task(validate_finish(output=layout["validate_dir"], world_size=num_shards, **tracking),
                             cpu="1", memory="2Gi").after(shards)

        signed = dedup_signature_shards(input=validated.outputs["Output"], output=layout["dedup_dir"],
                                        shards=layout["shards"], world_size=num_shards, seed=seed,
                                        options=dedup_options, **tracking)
        clustered = cpu_task(dedup_cluster(output=layout["dedup_dir"], world_size=num_shards, seed=seed,
                                           options=dedup_options, **tracking), cpu="2", memory="8Gi").after(signed)
        kept = dedup_write_shards(input=validated.outputs["Output"], output=layout["dedup_dir"],
                                  shards=layout["shards"], world_size=num_shards, seed=seed,
                                  options=dedup_options, **tracking).after(clustered)
        deduped = cpu_task(dedup_finish(output=layout["dedup_dir"], world_size=num_shards, **tracking),
                           cpu="1", memory="2Gi").after(kept)

        planned = cpu_task(pack_tokenizer(input=deduped.outputs["Output"], output=layout["pack_dir"], seed=seed,
                                          options=pack_options, **tracking), cpu="2", memory="8Gi")
        pack_parts = pack_shards(input=deduped.outputs["Output"], output=planned.output, shards=layout["shards"],
                                 world_size=num_shards, seed=seed, options=pack_options, **tracking)
        packed = cpu_task(pack_finish(output=layout["pack_dir"], world_size=num_shards, **tracking),
                          cpu="1", memory="4Gi").after(pack_parts)

        trained = gpu_task(
            train_model(input=packed.outputs["Output"], output=layout["train_dir"], preset=train_preset,
                        options=train_options, seed=seed, gpu_count=layout["gpu_count"], num_nodes=num_nodes,
                        gpu_node_selector=gpu_node_selector, gpu_tolerations=gpu_tolerations,
                        image=CUDA_IMAGE, **tracking),
            gpu_count, gpu_node_selector, gpu_tolerations, cpu=train_cpu, memory=train_memory)
        trained.set_retry(num_retries=3, backoff_duration="60s")  # a retry resumes from the latest checkpoint

        generated = gpu_task(eval_generate(train=trained.outputs["Output"], pack=packed.outputs["Output"],
                                           output=layout["eval_dir"], options=eval_options, seed=seed, **tracking),
                             gpu_count, gpu_node_selector, gpu_tolerations, cpu=eval_cpu, memory=eval_memory)
        evaluated = cpu_task(eval_score(output=generated.output, options=eval_options, seed=seed, **tracking),
                             cpu=score_cpu, memory=score_memory)

        served = cpu_task(serve_rollout(model="", eval_dir=evaluated.outputs["Output"],
                                        train_dir=trained.outputs["Output"], output=layout["serve_dir"],
                                        gate=serve_gate, target=serve_target, options=serve_options, **tracking),
                          cpu="2", memory="8Gi")
        served.set_caching_options(False)  # moves the registry alias and patches the Deployment
        kubernetes.use_secret_as_env(served, "codemill-inference-api-key", {"api-key": "CODEMILL_API_KEY"},
                                     optional=True)

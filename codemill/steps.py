"""The step table: every step of every pipeline, one line each. It is the map of the DAG.

A step's function is ``fn(config, ctx) -> stats`` (:class:`codemill.runner.Context` holds
the output URL, the shard, the tracker and the named inputs). :func:`codemill.runner.run`
wraps every call in the same preamble (shard and config checks, skip or refuse a finished
shard, log the config, time it, write the marker). To add a stage: write its config
dataclass and its step functions, add their lines here, then a CLI ``register`` (a module
in ``codemill.cli.COMMAND_MODULES``) and a KFP component that call :mod:`codemill.runner`
(docs/architecture.md, "Adding a stage").
"""

from __future__ import annotations

from codemill.runner import Step

# One line per step, wide on purpose: the table is the map of the DAG (docs/architecture.md).
# fmt: off
_TABLE = (
    # validate: read the source, keep or quarantine every record
    Step("validate-shard", "validate", "codemill.validate.config:ValidateConfig", "codemill.validate.steps:shard_step", sharded=True, marker="validate", inputs=("source",), writes="files/, quarantine/"),
    Step("validate-finish", "validate", None, "codemill.validate.steps:finish_step", writes="stats.json, report.md"),
    # dedup: repository-level MinHash LSH, then exact file dedup
    Step("dedup-signature", "dedup", "codemill.dedup.config:DedupConfig", "codemill.dedup.signature:signature_step", sharded=True, marker="dedup-signature", inputs=("input",), writes="_work/signatures, _work/files"),
    Step("dedup-cluster", "dedup", "codemill.dedup.config:DedupConfig", "codemill.dedup.cluster:cluster_step", marker="dedup-cluster", writes="clusters.parquet, exact_duplicates.parquet, _work/drop"),
    Step("dedup-write", "dedup", "codemill.dedup.config:DedupConfig", "codemill.dedup.write:write_step", sharded=True, marker="dedup-write", inputs=("input",), writes="files/"),
    Step("dedup-finish", "dedup", None, "codemill.dedup.finish:finish_step", writes="stats.json, report.md"),
    # tasks: execution-verified tasks from the corpus's documented functions (after dedup)
    Step("tasks-shard", "tasks", "codemill.tasks.config:TasksConfig", "codemill.tasks.shard:shard_step", sharded=True, marker="tasks", inputs=("input",), writes="quarantine/, _work/functions/"),
    Step("tasks-finish", "tasks", "codemill.tasks.config:TasksConfig", "codemill.tasks.finish:finish_step", writes="tasks/, quarantine/finish.parquet, stats.json, report.md"),
    # pack: dependency-ordered documents, tokenizer, FIM, packed rows
    Step("pack-tokenizer", "pack", "codemill.pack.config:PackConfig", "codemill.pack.steps:tokenizer_step", marker="pack-tokenizer", inputs=("input",), writes="tokenizer/, _work/plan.json"),
    Step("pack-shard", "pack", "codemill.pack.config:PackConfig", "codemill.pack.shard:shard_step", sharded=True, marker="pack", inputs=("input",), writes="_work/<split>/<shard>"),
    Step("pack-finish", "pack", None, "codemill.pack.finish:finish_step", writes="train/, val/, heldout/, meta.json"),
    # train: a causal LM on the packed rows (one process, torchrun, or a TrainJob)
    Step("train", "train", "codemill.train.config:TrainConfig", "codemill.train.launch:train_step", inputs=("input",), writes="model/, checkpoints/, stats.json, report.md", log_config=False),
    # synth: teacher-written data (oss-instruct) and distillation, kept only when the sandbox verifies it
    Step("synth", "synth", "codemill.synth.config:SynthConfig", "codemill.synth.steps:synth_step", writes="data/, quarantine/, _cache/teacher/, stats.json, report.md"),
    # sft: instruction-tune a base model on chat examples (synth's data, tasks' generate tasks)
    Step("sft", "sft", "codemill.sft.config:SftConfig", "codemill.sft.steps:sft_step", inputs=("model", "data"), writes="model/, checkpoints/, quarantine/, stats.json, report.md", log_config=False),
    # rl: GRPO-family RL with sandbox-executed rewards (optional input: tasks; problems are a setting)
    Step("rl", "rl", "codemill.rl.config:RLConfig", "codemill.rl.launch:rl_step", inputs=("model",), writes="model/, rollouts/, checkpoints/, stats.json, report.md"),
    # evaluate: generate (GPU), then score in the sandbox (CPU)
    Step("evaluate-generate", "evaluate", "codemill.evaluate.config:EvalConfig", "codemill.evaluate.steps:generate_step", inputs=("model",), writes="samples/, generation.json"),
    Step("evaluate-score", "evaluate", "codemill.evaluate.config:EvalConfig", "codemill.evaluate.steps:score_step", writes="results.jsonl, metrics.json, report.html, stats.json"),
    Step("evaluate-samples", "evaluate", "codemill.evaluate.config:EvalConfig", "codemill.evaluate.steps:samples_step", inputs=("samples", "benchmark"), writes="results.jsonl, metrics.json, report.html, stats.json"),
    # serve: gate on the metrics, register, roll out, smoke
    Step("serve-rollout", "serve", "codemill.serve.rollout:RolloutConfig", "codemill.serve.steps:rollout_step", inputs=("eval_dir",), writes="stats.json, report.md"),
    # r1 recipe: every stage's model side by side, each registered with its stage (docs/pipelines.md)
    Step("r1-compare", "r1", "codemill.recipes.r1:CompareConfig", "codemill.recipes.r1:compare_step", inputs=("run_dir",), writes="report.md, report.html, stats.json"),
)
# fmt: on

STEPS: dict[str, Step] = {s.name: s for s in _TABLE}


def markdown() -> str:
    """The table as Markdown, for docs/architecture.md (a test keeps the two equal)."""
    rows = ["| step | stage | runs | inputs | writes |", "|---|---|---|---|---|"]
    for s in _TABLE:
        runs = "per shard" if s.sharded else "once"
        inputs = ", ".join(f"`{i}`" for i in s.inputs) or "-"
        rows.append(f"| `{s.name}` | {s.stage} | {runs} | {inputs} | {s.writes} |")
    return "\n".join(rows)

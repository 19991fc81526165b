"""The rl stage, top to bottom: GRPO-family RL with rewards executed in the sandbox.

Local, CPU (the tiny model; the bundled stdin/stdout problems when no --tasks is given)::

    codemill rl --model runs/local/sft/model --tasks runs/local/tasks --output runs/local/rl \\
        --max-steps 20 --num-generations 8 --max-completion-tokens 128

One node, 8 GPUs (each rank samples and scores its share of the step's prompts; gradients
are averaged over ranks)::

    torchrun --nproc-per-node 8 -m codemill.cli rl --model s3://b/run/sft/model \\
        --tasks s3://b/run/tasks --output s3://b/run/rl

Several nodes: the train stage's TrainJob launcher runs that command on every node
(:mod:`codemill.rl.launch`). Preemption-safe: every ``checkpoint_every`` steps and on
SIGTERM a checkpoint (weights, optimizer, pool, monitors, RNG) goes to the output; a
rerun resumes from it, and because prompts and sampling seeds are functions of (seed,
step), continues as the uninterrupted run would. Details: docs/rl.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from functools import partial

import torch
from tqdm import tqdm

from codemill import io
from codemill.rl import data
from codemill.rl import fit as _fit
from codemill.rl import report as _report
from codemill.rl import step as _step
from codemill.rl.config import RLConfig
from codemill.rl.pool import TaskPool, difficulty_keep
from codemill.rl.reward import Rewarder
from codemill.stage import InputError, SigtermFlag, config_dict
from codemill.tracking import NoOpTracker, Tracker
from codemill.train import checkpoint as ckpt
from codemill.train import dist as _dist
from codemill.train.loop import TrainingInterrupted

# Fields a run and its resume may differ in; every other field must match the checkpoint's.
RESUME_MAY_CHANGE = {
    "max_steps",
    "checkpoint_every",
    "keep_checkpoints",
    "resume",
    "num_threads",
    "workers",
    "sandbox_url",
    "eval_every",
}


@dataclass
class RLState:
    """What the loop carries from step to step (checkpointed)."""

    step: int = 0
    history: list[dict] = field(default_factory=list)  # the monitors, one dict per step
    evals: list[dict] = field(default_factory=list)  # {"step", "compute", "pass_rate", "samples"}
    compute: float = 0.0  # FLOPs so far: 2N per sampled token + 6N per trained token (all ranks)
    zero_variance_groups: int = 0
    groups: int = 0
    retired: list[dict] = field(default_factory=list)  # {"step", "task_id"} as tasks left the pool
    difficulty: dict = field(default_factory=dict)
    task_ids: list[str] = field(default_factory=list)  # the pool after the difficulty filter


def run(
    config: RLConfig,
    model: str,
    tasks: str | None,
    output: str,
    tracker: Tracker | None = None,
    shuffle_rewards: bool = False,
) -> dict:
    """Train ``model`` on ``tasks`` (and/or ``config.problems``); write model/, rollouts/, stats, report."""
    d = _dist.setup(use_deepspeed=False)
    tracker = tracker if (tracker is not None and d.is_main) else NoOpTracker()
    if config.num_threads or d.device.type == "cpu":
        # on CPU the sandbox's processes need the other cores: 2 torch threads next to them
        # made a step 9x slower next to one other job (docs/rl.md, "CPU threads")
        torch.set_num_threads(config.num_threads or 1)
    if config.prompts_per_step % d.world_size:
        raise InputError(
            f"rl: prompts_per_step ({config.prompts_per_step}) must be a multiple of the {d.world_size} ranks"
        )
    scratch = tempfile.mkdtemp(prefix="codemill-rl-")
    try:
        return _run(config, model, tasks, output, tracker, d, scratch, shuffle_rewards)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _dist.teardown()


def _load_model(url: str, scratch: str, c: RLConfig, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not io.is_s3(url) and not os.path.isdir(io.local_path(url)):
        raise InputError(f"{url}: model folder not found (expected a Hugging Face model directory)")
    local = io.local_path(url) if not io.is_s3(url) else io.download_dir(url, os.path.join(scratch, "model"))
    if not os.path.exists(os.path.join(local, "config.json")):
        raise InputError(f"{url}: not a Hugging Face model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(local)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if c.precision == "bf16" else torch.float32
    torch.manual_seed(c.seed)
    policy = AutoModelForCausalLM.from_pretrained(local, dtype=dtype).to(device)
    ref = None
    if c.beta > 0:
        ref = AutoModelForCausalLM.from_pretrained(local, dtype=dtype).to(device).eval()
        ref.requires_grad_(False)
    return local, tokenizer, policy, ref


def _run(
    c: RLConfig,
    model_url: str,
    tasks_url: str | None,
    output: str,
    tracker: Tracker,
    d,
    scratch: str,
    shuffle_rewards: bool,
) -> dict:
    # ------------------------------------------------------------------------ data and model
    loaded, quarantine = data.load(c, tasks_url)
    model_dir, tokenizer, policy, ref = _load_model(model_url, scratch, c, d.device)
    chat = c.prompt_style == "chat" or (c.prompt_style == "auto" and bool(getattr(tokenizer, "chat_template", None)))
    if chat:
        loaded.train = [data.chat_problem(t) if t.source == "problems" else t for t in loaded.train]
    by_id = {t.task_id: t for t in loaded.train}
    optimizer = torch.optim.AdamW(
        [p for p in policy.parameters() if p.requires_grad], lr=c.lr, betas=(0.9, 0.99), weight_decay=0.0
    )
    n_params = sum(p.numel() for p in policy.parameters())
    d.print(
        f"[rl] {n_params:,} parameters, {len(loaded.train)} training / {len(loaded.heldout)} held-out prompts, "
        f"{'chat' if chat else 'raw'} prompts, loss {c.loss}, {d.world_size} x {d.device}"
    )
    if d.is_main and quarantine:
        io.write_text(io.join(output, "quarantine.jsonl"), data.rows_json(quarantine))

    # ------------------------------------------------------------------------ resume
    checkpointer = ckpt.Checkpointer(output, scratch, c.keep_checkpoints, d.is_main, d.barrier)
    summary = {"config": {k: v for k, v in config_dict(c).items() if k not in RESUME_MAY_CHANGE}}
    resumed_from = ckpt.latest(output) if c.resume else None
    pool = TaskPool(sorted(by_id), c.npr_threshold, c.npr_window, c.seed)
    state = RLState(task_ids=sorted(by_id))
    if resumed_from is not None:
        state = _resume(checkpointer, resumed_from, summary, policy, optimizer, pool)
        pool.task_ids = list(state.task_ids)
    shuffle = torch.Generator().manual_seed(c.seed + 7919) if shuffle_rewards else None

    with Rewarder(c.workers, c.test_timeout, chat, c.sandbox_url) as rewarder:
        run_ = _step.Run(c, policy, ref, optimizer, tokenizer, chat, rewarder, d, n_params)
        if state.step == 0:
            if c.difficulty_samples:
                state.task_ids = pool.task_ids = _difficulty_filter(run_, [by_id[t] for t in pool.task_ids], state)
            _evaluate(run_, loaded.heldout, state, tracker)

        # -------------------------------------------------------------------- the loop
        bar = tqdm(total=c.max_steps, initial=state.step, desc="rl", unit="step", disable=not d.is_main)
        with bar, SigtermFlag() as sigterm:
            while state.step < c.max_steps:
                ids = pool.draw(c.prompts_per_step)
                if not ids:
                    d.print(f"[rl] every task left the pool (no-positive-resampling) by step {state.step}; stopping")
                    break
                mine = ids[d.rank :: d.world_size] or ids[:1]
                torch.manual_seed(_step_seed(c.seed, state.step, d.rank))
                result = _step.step(run_, [by_id[t] for t in mine], state.step + 1, shuffle)
                state.step += 1
                metrics = _record(state, result, pool, c, d, n_params, output)
                tracker.log_metrics(metrics, step=state.step)
                bar.update(1)
                bar.set_postfix(pass_rate=f"{metrics['pass_rate']:.2f}", reward=f"{metrics['reward_mean']:.2f}")
                last = state.step == c.max_steps
                if (c.eval_every and state.step % c.eval_every == 0) or last:
                    _evaluate(run_, loaded.heldout, state, tracker)
                stop = d.any(sigterm.raised)
                if last or stop or (c.checkpoint_every and state.step % c.checkpoint_every == 0):
                    url = checkpointer.save(
                        state.step, partial(_write_checkpoint, policy, optimizer, state, pool, d.is_main), summary
                    )
                    if stop and not last:
                        raise TrainingInterrupted(state.step, url)

    # ------------------------------------------------------------------------ fit, model, stats, report
    fit = _fit_points(state, c, bool(loaded.heldout))
    if not d.is_main:
        return {}
    with io.staged_dir(output) as out:
        model_out = _save_model(policy, tokenizer, model_dir, out)
        tracker.log_artifacts(model_out, "model")
        stats = _report.stats(c, state, loaded.stats, fit, pool, n_params, resumed_from or 0, d.world_size)
        for path in _report.write(out, stats, state, fit):
            tracker.log_artifact(path)
    io.write_json(io.join(output, "stats.json"), stats)
    tracker.log_metrics(_report.final_metrics(stats), step=state.step)
    return stats


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + rank) % (2**63)


def _record(
    state: RLState, result: _step.StepResult, pool: TaskPool, c: RLConfig, d, n_params: int, output: str
) -> dict:
    """Fold one step into the state (all ranks' groups), write its rollouts, return its monitors."""
    gathered = _gather(d, (result.rows, result.group_pass, result.metrics, result.zero_variance_groups))
    rows = [r for g in gathered for r in g[0]]
    for part in gathered:
        for task_id, rate in sorted(part[1].items()):
            if pool.record(task_id, rate, state.step):
                state.retired.append({"step": state.step, "task_id": task_id})
    metrics = {k: sum(g[2][k] for g in gathered) / len(gathered) for k in result.metrics}
    for k in ("executions", "generated_tokens", "trained_tokens"):
        metrics[k] = sum(g[2][k] for g in gathered)
    metrics["executions_per_second"] = sum(g[2]["executions_per_second"] for g in gathered)
    state.zero_variance_groups += sum(g[3] for g in gathered)
    state.groups += sum(len(g[1]) for g in gathered)
    metrics["zero_variance_groups"] = float(sum(g[3] for g in gathered))
    state.compute += (
        2.0 * n_params * metrics["generated_tokens"] + 6.0 * n_params * metrics["trained_tokens"] * c.num_iterations
    )
    metrics.update(pool_size=float(len(pool.active())), retired=float(len(pool.retired)), compute=state.compute)
    if c.beta <= 0:
        metrics.pop("kl", None)
    state.history.append({"step": state.step, **metrics})
    if d.is_main:
        _report.write_rollouts(output, state.step, rows)
    return metrics


def _gather(d, obj) -> list:
    if not d.active:
        return [obj]
    import torch.distributed as dist

    out = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def _evaluate(run_: _step.Run, heldout: list, state: RLState, tracker: Tracker) -> None:
    """Held-out pass rate at the current compute (a point of the ScaleRL curve)."""
    d = run_.dist
    if not heldout:
        return
    torch.manual_seed(_step_seed(run_.config.seed + 1, state.step, d.rank))
    passed, samples, _ = _step.evaluate(run_, heldout[d.rank :: d.world_size])
    passed, samples = d.sum([float(passed), float(samples)])
    rate = passed / max(samples, 1.0)
    state.evals.append({"step": state.step, "compute": state.compute, "pass_rate": rate, "samples": int(samples)})
    fitted = _fit.fit(
        [e["compute"] for e in state.evals], [e["pass_rate"] for e in state.evals], run_.config.fit_min_points
    )
    # the curve's parameters as they settle, from the first step with enough points
    tracker.log_metrics(
        {"heldout_pass_rate": rate, **({f"fit_{k}": fitted[k] for k in ("A", "B", "C_mid")} if fitted else {})},
        step=state.step,
    )
    d.print(f"[rl] step {state.step} | held-out pass rate {rate:.3f} ({int(samples)} samples)")


def _fit_points(state: RLState, c: RLConfig, heldout: bool) -> dict:
    """The sigmoid over held-out points, or over the training pass rate when nothing is held out."""
    if heldout:
        compute, rate, on = [e["compute"] for e in state.evals], [e["pass_rate"] for e in state.evals], "heldout"
    else:
        compute, rate, on = [h["compute"] for h in state.history], [h["pass_rate"] for h in state.history], "train"
    result = _fit.fit(compute, rate, c.fit_min_points)
    return {"on": on, "compute": compute, "pass_rate": rate, "result": result}


def _difficulty_filter(run_: _step.Run, tasks: list, state: RLState) -> list[str]:
    """Score every task with ``difficulty_samples`` completions of the starting model; keep the middle."""
    c = run_.config
    rates = {}
    for i in range(0, len(tasks), c.prompts_per_step):
        chunk = tasks[i : i + c.prompts_per_step]
        torch.manual_seed(_step_seed(c.seed + 2, i, 0))
        batch, per_row, _ = _step.rollout(run_, chunk, c.difficulty_samples)
        scores = run_.rewarder.score(per_row, batch.texts)
        for j, t in enumerate(chunk):
            group = scores[j * c.difficulty_samples : (j + 1) * c.difficulty_samples]
            rates[t.task_id] = sum(s.passed for s in group) / len(group)
    kept, dropped = difficulty_keep(rates, c.difficulty_min, c.difficulty_max)
    state.difficulty = {"scored": len(rates), "kept": len(kept), "dropped": dropped}
    run_.dist.print(f"[rl] difficulty filter: kept {len(kept)} of {len(rates)} tasks ({dropped})")
    if not kept:
        raise InputError(f"rl: the difficulty filter [{c.difficulty_min}, {c.difficulty_max}] kept no task ({dropped})")
    return kept


# ---------------------------------------------------------------------------- checkpoints and the model


def _write_checkpoint(policy, optimizer, state: RLState, pool: TaskPool, is_main: bool, folder: str) -> None:
    if is_main:  # every rank holds the same weights (gradients are averaged)
        torch.save(
            {
                "model": policy.state_dict(),
                "optimizer": optimizer.state_dict(),
                "state": asdict(state),
                "pool": pool.state(),
                "rng": ckpt.rng_state(),
            },
            os.path.join(folder, "state.pt"),
        )


def _resume(checkpointer: ckpt.Checkpointer, step: int, summary: dict, policy, optimizer, pool: TaskPool) -> RLState:
    folder = checkpointer.fetch(step)
    saved = io.read_json(os.path.join(folder, ckpt.MARKER)).get("config", {})
    changed = sorted(k for k, v in summary["config"].items() if saved.get(k) != v)
    if changed:
        raise InputError(
            f"{checkpointer.output}: checkpoint step {step} was made with other settings {changed}; "
            "use a new output or --no-resume"
        )
    # a file this stage wrote into its own output (RNG states are not tensors)
    blob = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=False)
    policy.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    pool.load(blob["pool"])
    ckpt.set_rng_state(blob["rng"])
    print(f"[rl] resumed from {ckpt.step_name(step)} of {checkpointer.output}", flush=True)
    return RLState(**blob["state"])


def _save_model(policy, tokenizer, base_dir: str, out: str) -> str:
    from codemill.train.model import write_generation_config

    model_dir = os.path.join(out, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    policy.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    write_generation_config(model_dir, tokenizer, base_dir)
    return model_dir

"""Train a causal LM on pack's shards: the whole run, top to bottom.

Local, CPU (what ``make run`` does through the pipeline)::

    codemill train --input runs/local/pack --output runs/local/train --preset tiny

One node, 8 GPUs (DDP, or DeepSpeed ZeRO with ``--deepspeed zero2|zero3_offload``)::

    torchrun --nproc-per-node 8 -m codemill.cli train --input s3://b/run/pack \\
        --output s3://b/run/train --preset deepseek-coder-1.3b --deepspeed zero2

Several nodes: a Kubeflow Trainer ``TrainJob`` runs that command on every node
(:mod:`codemill.train.trainjob`).

The run is preemption-safe: every ``checkpoint_every`` steps and on SIGTERM it writes a
checkpoint to the output URL; a rerun with the same output resumes from the latest one
and, because the data order is a function of (seed, step), ends with the same weights
as a run that was never interrupted. How the model is driven (plain/DDP or DeepSpeed)
is :mod:`codemill.train.backend`'s business; this file does not branch on it.
Details: docs/train.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import partial

import torch
from tqdm import tqdm

from codemill import io
from codemill.stage import InputError, SigtermFlag, config_dict, log_config, write_stats
from codemill.tracking import NoOpTracker, Tracker
from codemill.train import backend as _backend
from codemill.train import checkpoint as ckpt
from codemill.train import data as _data
from codemill.train import dist as _dist
from codemill.train import model as _model
from codemill.train import optim as _optim
from codemill.train import report as _report
from codemill.train.checkpoint import TrainState
from codemill.train.config import TrainConfig, config_flags, load_preset, resolve
from codemill.train.report import TrainStats

# Fields that may change between a run and its resume; every other field must match.
RESUME_MAY_CHANGE = {
    "log_every",
    "eval_every",
    "eval_batches",
    "checkpoint_every",
    "keep_checkpoints",
    "resume",
    "num_threads",
    "peak_tflops",
}


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived; a checkpoint at ``step`` was written and a rerun resumes from it."""

    def __init__(self, step: int, url: str):
        super().__init__(f"training stopped by SIGTERM after step {step}; checkpoint {url}; rerun to resume")
        self.step, self.url = step, url


def train(config: TrainConfig, input: str, output: str, tracker: Tracker | None = None) -> dict:
    """Train on pack's output at ``input``; write ``model/``, checkpoints and stats to ``output``."""
    c = resolve(config)
    _backend.check_available(c)
    if c.attn_implementation == "flash_attention_2" and not torch.cuda.is_available():
        c.attn_implementation = "sdpa"  # a GPU preset run on CPU (tests, smoke runs) keeps its masks
    d = _dist.setup(use_deepspeed=bool(c.deepspeed))
    tracker = tracker if (tracker is not None and d.is_main) else NoOpTracker()
    if c.num_threads:
        torch.set_num_threads(c.num_threads)
    ds_config = _optim.deepspeed_config(c.deepspeed, c, d.world_size) if c.deepspeed else None
    if d.is_main:
        log_config("train", c, tracker)
    scratch = tempfile.mkdtemp(prefix="codemill-train-")
    try:
        return _run(c, ds_config, d, input, output, tracker, scratch).to_dict()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _dist.teardown()


def _run(
    c: TrainConfig, ds_config: dict | None, d: _dist.Dist, input: str, output: str, tracker: Tracker, scratch: str
) -> TrainStats:
    from transformers import AutoTokenizer

    # ------------------------------------------------------------------------ data
    pack_dir = _fetch_pack(input, scratch)
    meta = _model.read_meta(pack_dir)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(pack_dir, "tokenizer"))
    train_split, val_split = (_load_split(pack_dir, name, c.seq_len, input) for name in ("train", "val"))
    seq_len = train_split.seq_len

    # ------------------------------------------------------------------------ model (checked before weights)
    model, model_config, base_dir = _build_model(c, tokenizer, meta, seq_len, scratch)
    model.to(d.device)
    sizes = _model.count_parameters(model)
    flops_per_token = _model.flops_per_token(model_config, sizes["matmul_parameters"], seq_len)
    peak = _report.peak_tflops(c.peak_tflops)
    d.print(
        f"[train] {sizes['parameters']:,} parameters, seq_len {seq_len}, "
        f"{train_split.n_sequences} train / {val_split.n_sequences} val sequences, {d.world_size} x {d.device}"
    )
    tracker.log_params({f"model.{k}": v for k, v in model_config.to_dict().items() if not isinstance(v, dict)})

    # ------------------------------------------------------------------------ optimizer, schedule, DDP or DeepSpeed
    backend = _backend.create(model, c, d, ds_config)

    # ------------------------------------------------------------------------ resume
    checkpointer = ckpt.Checkpointer(output, scratch, c.keep_checkpoints, d.is_main, d.barrier)
    summary = {"config": {k: v for k, v in config_dict(c).items() if k not in RESUME_MAY_CHANGE}}
    resumed_from = ckpt.latest(output) if c.resume else None
    state = _resume(checkpointer, resumed_from, backend, summary, d) if resumed_from is not None else TrainState()

    # ------------------------------------------------------------------------ the loop
    if state.step == 0:
        state.val_loss_start = _evaluate(backend, val_split, c, d)
        state.val_history.append({"step": 0, "val_loss": state.val_loss_start})
        d.print(f"[train] step 0 | val loss {state.val_loss_start:.4f}")
    window = _Window()
    backend.net.train()
    bar = tqdm(total=c.max_steps, initial=state.step, desc="train", unit="step", disable=not d.is_main)
    with bar, SigtermFlag() as sigterm:
        while state.step < c.max_steps:
            done = _train_step(backend, train_split, state.step, c, d)
            state.step += 1
            state.tokens += done.tokens
            state.train_seconds += done.seconds
            window.add(done)
            bar.update(1)

            # -------------------------------------------------------------------- log, evaluate, checkpoint
            last = state.step == c.max_steps
            if state.step % c.log_every == 0 or last:
                metrics = window.metrics(d, backend.lr(), done.grad_norm, flops_per_token, peak)
                state.history.append({"step": state.step, **metrics})
                tracker.log_metrics({**metrics, **_report.system_metrics(d.device)}, step=state.step)
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_second']:.0f}")
                window = _Window()
            if state.step % c.eval_every == 0 or last:
                val = _evaluate(backend, val_split, c, d)
                state.val_history.append({"step": state.step, "val_loss": val})
                tracker.log_metrics({"val_loss": val, "val_perplexity": _report.perplexity(val)}, step=state.step)
                d.print(f"[train] step {state.step} | val loss {val:.4f}")
            stop = d.any(sigterm.raised)
            if last or stop or (c.checkpoint_every and state.step % c.checkpoint_every == 0):
                url = checkpointer.save(state.step, partial(_write_checkpoint, backend, state, d.is_main), summary)
                if stop and not last:
                    raise TrainingInterrupted(state.step, url)

    # ------------------------------------------------------------------------ final model, stats, report
    state_dict = backend.export_state_dict()  # a collective under ZeRO-3: every rank, before rank 0 goes on
    stats = TrainStats.of(
        state,
        sizes,
        flops_per_token,
        peak,
        seq_len=seq_len,
        world_size=d.world_size,
        device=d.device.type,
        global_batch_sequences=c.batch_size * c.grad_accum * d.world_size,
        preset=c.preset,
        resumed_from_step=resumed_from or 0,
    )
    if d.is_main:
        with io.staged_dir(output) as out:
            model_dir = _save_model(backend.unwrap(), state_dict, tokenizer, base_dir, c.precision, out)
            tracker.log_artifacts(model_dir, "model")
            for path in _report.write(out, stats, state, config_dict(c), command_line(c, input, output)):
                tracker.log_artifact(path)
        write_stats(output, stats.to_dict())
        tracker.log_metrics(stats.metrics(), step=state.step)
    return stats


def command_line(c: TrainConfig, input: str, output: str) -> str:
    """The CLI command that reproduces this resolved config."""
    return shlex.join(["codemill", "train", "--input", input, "--output", output, *config_flags(c)])


# ---------------------------------------------------------------------------- data and model


def _fetch_pack(input: str, scratch: str) -> str:
    """A local folder with pack's tokenizer, train and val splits and meta.json."""
    if not io.is_s3(input):
        if not os.path.isdir(io.local_path(input)):
            raise InputError(f"{input}: pack output folder does not exist")
        return io.local_path(input)
    local = os.path.join(scratch, "pack")
    for part in ("tokenizer", "train", "val"):  # not heldout/: evaluate's, and the largest part
        io.download_dir(io.join(input, part), os.path.join(local, part))
    io.write_bytes(os.path.join(local, "meta.json"), io.read_bytes(io.join(input, "meta.json")))
    return local


def _load_split(pack_dir: str, name: str, seq_len: int | None, input: str) -> _data.PackedSplit:
    split = _data.load_split(pack_dir, name, seq_len)
    if split.n_sequences == 0:
        raise InputError(f"{input}: the {name} split has no sequences")
    return split


def _build_model(c: TrainConfig, tokenizer, meta: dict, seq_len: int, scratch: str):
    """``(model, model_config, base_dir)``: every compatibility check runs before a weight is allocated."""
    base_dir = _model.fetch_base(c.base_model, scratch) if c.base_model else None
    if base_dir:
        model_config = _model.base_config(base_dir, c.attn_implementation)
        _model.check_same_tokenizer(base_dir, tokenizer)
    else:
        model_config = _model.llama_config(load_preset(c.preset)["model"], tokenizer, c.attn_implementation)
    where = f"base model {c.base_model}" if base_dir else f"preset {c.preset}"
    _model.check_compatible(model_config, tokenizer, meta, seq_len, where=where)
    torch.manual_seed(c.seed)
    model = _model.build_model(model_config, base_dir)
    model.config.use_cache = False
    if c.gradient_checkpointing:
        # Non-reentrant checkpointing works with DDP/ZeRO hooks and inputs that need no grad.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, model_config, base_dir


def _save_model(model, state_dict: dict | None, tokenizer, base_dir: str | None, precision: str, out: str) -> str:
    """``out/model/``: the Hugging Face directory (weights, config, generation config, tokenizer)."""
    model_dir = os.path.join(out, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    if precision == "bf16":
        model.to(torch.bfloat16)
    model.config.use_cache = True
    model.save_pretrained(model_dir, state_dict=state_dict)
    tokenizer.save_pretrained(model_dir)
    _model.write_generation_config(model_dir, tokenizer, base_dir)
    return model_dir


# ---------------------------------------------------------------------------- one step, one evaluation


@dataclass
class _Step:
    """One optimizer step's numbers: loss and targets on this rank, tokens on all ranks."""

    loss_sum: float
    targets: int
    tokens: int
    seconds: float
    grad_norm: float


def _train_step(backend: _backend.Backend, split: _data.PackedSplit, step: int, c: TrainConfig, d: _dist.Dist) -> _Step:
    """``grad_accum`` micro-batches on this rank, then clip, update and zero the gradients."""
    t0 = time.perf_counter()
    mask_dtype = _data.mask_dtype(c.attn_implementation)
    batches = [
        _data.train_batch(
            split,
            _data.step_rows(split.n_sequences, c.seed, step, micro, c.batch_size, c.grad_accum, d.rank, d.world_size),
            mask_dtype,
        )
        for micro in range(c.grad_accum)
    ]
    local_targets = sum(b.targets for b in batches)
    # Loss = sum over the step's targets on all ranks / their count; DDP and DeepSpeed
    # average gradients over ranks, hence the world_size in the denominator.
    global_targets = d.sum([local_targets])[0]
    per_rank_items = torch.tensor(max(global_targets, 1) / d.world_size, device=d.device)
    step_loss = torch.zeros((), device=d.device)
    for micro, batch in enumerate(batches):
        loss = backend.loss(batch, per_rank_items, sync=micro == c.grad_accum - 1)
        backend.backward(loss)
        step_loss += loss.detach()
    grad_norm = backend.clip_grad_norm()
    backend.step()
    backend.zero_grad()
    tokens = int(d.sum([sum(b.tokens for b in batches)])[0])
    if d.device.type == "cuda":
        torch.cuda.synchronize(d.device)
    return _Step(float(step_loss) * per_rank_items.item(), local_targets, tokens, time.perf_counter() - t0, grad_norm)


def _evaluate(backend: _backend.Backend, split: _data.PackedSplit, c: TrainConfig, d: _dist.Dist) -> float:
    """Mean loss per target over the same first ``eval_batches`` validation micro-batches, all ranks."""
    backend.net.eval()
    total, count = 0.0, 0
    mask_dtype = _data.mask_dtype(c.attn_implementation)
    with torch.no_grad():
        for rows in _data.eval_row_batches(split, c.batch_size, c.eval_batches, d.rank, d.world_size):
            batch = _data.make_batch(split.tokens[rows], split.segments[rows], mask_dtype)
            total, count = total + float(backend.loss(batch, 1)), count + batch.targets
    backend.net.train()
    total, count = d.sum([total, count])
    return total / max(count, 1)


@dataclass
class _Window:
    """Sums since the last metrics log: what the logged loss and tokens/s average over."""

    loss_sum: float = 0.0
    targets: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, step: _Step) -> None:
        self.loss_sum += step.loss_sum
        self.targets += step.targets
        self.tokens += step.tokens
        self.seconds += step.seconds

    def metrics(self, d: _dist.Dist, lr: float, grad_norm: float, flops_per_token: float, peak: float) -> dict:
        loss_sum, targets = d.sum([self.loss_sum, self.targets])
        metrics = {
            "loss": loss_sum / max(targets, 1),
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_second": self.tokens / self.seconds,
        }
        mfu = _report.mfu(metrics["tokens_per_second"], flops_per_token, peak, d.world_size)
        return metrics if mfu is None else {**metrics, "mfu": mfu}


# ---------------------------------------------------------------------------- checkpoints and SIGTERM


def _write_checkpoint(backend: _backend.Backend, state: TrainState, is_main: bool, folder: str) -> None:
    """Every rank: the backend writes its files (DeepSpeed: this rank's shards); rank 0 adds ``state.pt``."""
    backend_state = backend.save(folder)
    if is_main:
        ckpt.save_state(folder, state, backend_state)


def _resume(
    checkpointer: ckpt.Checkpointer, step: int, backend: _backend.Backend, summary: dict, d: _dist.Dist
) -> TrainState:
    """Load checkpoint ``step`` into the backend and the RNGs; refuse one made with other settings."""
    folder = checkpointer.fetch(step)
    saved = io.read_json(os.path.join(folder, ckpt.MARKER)).get("config", {})
    changed = sorted(k for k, v in summary["config"].items() if saved.get(k) != v)
    if changed:
        raise InputError(
            f"{checkpointer.output}: checkpoint step {step} was made with other settings {changed}; "
            "use a new output or --no-resume"
        )
    state, rng, backend_state = ckpt.load_state(folder)
    backend.load(folder, backend_state)
    ckpt.set_rng_state(rng)
    d.print(f"[train] resumed from {ckpt.step_name(step)} of {checkpointer.output}")
    return state

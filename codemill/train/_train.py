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
as a run that was never interrupted.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import tempfile
import time

import torch
from tqdm import tqdm

from codemill import io
from codemill.stage import InputError, config_dict, log_config, write_stats
from codemill.tracking import NoOpTracker
from codemill.train import _checkpoint as ckpt
from codemill.train import _data, _dist, _model, _optim, _report
from codemill.train._config import TrainConfig, config_flags, load_preset, resolve

# Fields that may change between a run and its resume; every other field must match.
RESUME_MAY_CHANGE = {"log_every", "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints",
                     "resume", "num_threads", "peak_tflops"}


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived; a checkpoint at ``step`` was written and a rerun resumes from it."""

    def __init__(self, step: int, url: str):
        super().__init__(f"training stopped by SIGTERM after step {step}; checkpoint {url}; rerun to resume")
        self.step, self.url = step, url


class _SigtermFlag:
    """Turns SIGTERM into a flag the loop checks between steps (main thread only)."""

    def __init__(self):
        self.raised, self._previous = False, None

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handler, no flag
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def train(config: TrainConfig, input: str, output: str, tracker=None) -> dict:
    """Train on pack's output at ``input``; write ``model/``, checkpoints and stats to ``output``."""
    # ------------------------------------------------------------------------ config and checks
    c = resolve(config)
    if c.deepspeed and not torch.cuda.is_available():
        raise InputError(f"--deepspeed {c.deepspeed}: DeepSpeed needs GPUs and this machine has none; "
                         "drop the flag to train on CPU")
    if c.deepspeed:
        try:
            import deepspeed  # noqa: F401
        except ImportError as e:
            raise InputError(f"--deepspeed {c.deepspeed}: the deepspeed package is not installed") from e
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
        return _run(c, ds_config, d, input, output, tracker, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _dist.teardown()


def _fetch_pack(input: str, scratch: str) -> str:
    if not io.is_s3(input):
        if not os.path.isdir(io.local_path(input)):
            raise InputError(f"{input}: pack output folder does not exist")
        return io.local_path(input)
    local = os.path.join(scratch, "pack")
    for part in ("tokenizer", "train", "val"):
        io.download_dir(io.join(input, part), os.path.join(local, part))
    io.write_bytes(os.path.join(local, "meta.json"), io.read_bytes(io.join(input, "meta.json")))
    return local


def _run(c: TrainConfig, ds_config, d: _dist.Dist, input: str, output: str, tracker, scratch: str) -> dict:
    from transformers import AutoTokenizer

    # ------------------------------------------------------------------------ data
    pack_dir = _fetch_pack(input, scratch)
    meta = _model.read_meta(pack_dir)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(pack_dir, "tokenizer"))
    train_split = _data.load_split(pack_dir, "train", c.seq_len)
    val_split = _data.load_split(pack_dir, "val", c.seq_len)
    for split in (train_split, val_split):
        if split.n_sequences == 0:
            raise InputError(f"{input}: the {split.name} split has no sequences")
    seq_len = train_split.seq_len

    # ------------------------------------------------------------------------ model (checked before weights)
    base_dir = _model.fetch_base(c.base_model, scratch) if c.base_model else None
    if base_dir:
        model_config = _model.base_config(base_dir, c.attn_implementation)
        _model.check_same_tokenizer(base_dir, tokenizer)
    else:
        model_config = _model.llama_config(load_preset(c.preset)["model"], tokenizer, c.attn_implementation)
    _model.check_compatible(model_config, tokenizer, meta, seq_len, where=f"preset {c.preset}" if not base_dir
                            else f"base model {c.base_model}")
    torch.manual_seed(c.seed)
    model = _model.build_model(model_config, base_dir)
    model.config.use_cache = False
    if c.gradient_checkpointing:
        # Non-reentrant checkpointing works with DDP/ZeRO hooks and inputs that need no grad.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(d.device)
    sizes = _model.count_parameters(model)
    flops_tok = _model.flops_per_token(model_config, sizes["matmul_parameters"], seq_len)
    d.print(f"[train] {sizes['parameters']:,} parameters, seq_len {seq_len}, "
            f"{train_split.n_sequences} train / {val_split.n_sequences} val sequences, {d.world_size} x {d.device}")
    tracker.log_params({f"model.{k}": v for k, v in model_config.to_dict().items() if not isinstance(v, dict)})

    # ------------------------------------------------------------------------ optimizer, schedule, engine
    if ds_config:
        import deepspeed

        net, optimizer, _, scheduler = deepspeed.initialize(
            model=model, model_parameters=_optim.param_groups(model, c.weight_decay), config=ds_config,
            lr_scheduler=lambda opt: _optim.scheduler_for(opt, c))
    else:
        optimizer = _optim.adamw(model, c, fused=d.device.type == "cuda")
        scheduler = _optim.scheduler_for(optimizer, c)
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda"
                                                        else None) if d.active else model
    autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16")
    mask_dtype = {"flash_attention_2": None, "sdpa": torch.bool, "eager": torch.float32}[c.attn_implementation]

    # ------------------------------------------------------------------------ resume
    checkpointer = ckpt.Checkpointer(output, scratch, c.keep_checkpoints, d.is_main, d.barrier)
    comparable = {k: v for k, v in config_dict(c).items() if k not in RESUME_MAY_CHANGE}
    state = {"step": 0, "tokens": 0, "train_seconds": 0.0, "history": [], "val_history": []}
    resumed_from = ckpt.latest(output) if c.resume else None
    if resumed_from is not None:
        folder = checkpointer.fetch(resumed_from)
        saved = io.read_json(os.path.join(folder, ckpt.MARKER)).get("config", {})
        changed = sorted(k for k in comparable if saved.get(k) != comparable[k])
        if changed:
            raise InputError(f"{output}: checkpoint step {resumed_from} was made with other settings {changed}; "
                             "use a new output or --no-resume")
        saved_state = ckpt.load_state(folder)
        if ds_config:
            net.load_checkpoint(folder, tag="ds", load_optimizer_states=True, load_lr_scheduler_states=True)
        else:
            model.load_state_dict(saved_state.pop("model"))
            optimizer.load_state_dict(saved_state.pop("optimizer"))
            scheduler.load_state_dict(saved_state.pop("scheduler"))
        ckpt.set_rng_state(saved_state.pop("rng"))
        state.update(saved_state)
        d.print(f"[train] resumed from {ckpt.step_name(resumed_from)} of {output}")

    def save_checkpoint() -> str:
        def write(folder):
            trainer_state = {**state, "rng": ckpt.rng_state()}
            if ds_config:
                net.save_checkpoint(folder, tag="ds", save_latest=False)
            else:
                trainer_state.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                                     scheduler=scheduler.state_dict())
            if d.is_main:
                ckpt.save_state(folder, trainer_state)
        return checkpointer.save(state["step"], write, {"config": comparable})

    def evaluate() -> float:
        net.eval()
        total, count = 0.0, 0
        with torch.no_grad(), autocast:
            for rows in _data.eval_row_batches(val_split, c.batch_size, c.eval_batches, d.rank, d.world_size):
                batch = _data.make_batch(val_split.tokens[rows], val_split.segments[rows], mask_dtype).to(d.device)
                out = net(**batch.model_inputs(), num_items_in_batch=1)
                total, count = total + float(out.loss), count + batch.targets
        net.train()
        total, count = d.sum([total, count])
        return total / max(count, 1)

    # ------------------------------------------------------------------------ the loop
    if state["step"] == 0:
        state["val_loss_start"] = evaluate()
        state["val_history"].append({"step": 0, "val_loss": state["val_loss_start"]})
        d.print(f"[train] step 0 | val loss {state['val_loss_start']:.4f}")
    peak = _report.peak_tflops(c.peak_tflops)
    window = _new_window()
    net.train()
    bar = tqdm(total=c.max_steps, initial=state["step"], desc="train", unit="step", disable=not d.is_main)
    with _SigtermFlag() as sigterm:
        while state["step"] < c.max_steps:
            step, t0 = state["step"], time.perf_counter()
            batches = [_data.train_batch(train_split, _data.step_rows(
                train_split.n_sequences, c.seed, step, micro, c.batch_size, c.grad_accum, d.rank, d.world_size),
                mask_dtype) for micro in range(c.grad_accum)]
            local_targets = sum(b.targets for b in batches)
            # Loss = sum over the step's targets on all ranks / their count; DDP and DeepSpeed
            # average gradients over ranks, hence the world_size in the denominator.
            global_targets = d.sum([local_targets])[0]
            per_rank_items = torch.tensor(max(global_targets, 1) / d.world_size, device=d.device)
            step_loss = torch.zeros((), device=d.device)
            for micro, batch in enumerate(batches):
                batch = batch.to(d.device)
                sync = micro == c.grad_accum - 1 or ds_config or not d.active
                with (contextlib.nullcontext() if sync else net.no_sync()), autocast:
                    loss = net(**batch.model_inputs(), num_items_in_batch=per_rank_items).loss
                if ds_config:
                    net.backward(loss, scale_wrt_gas=False)
                    net.step()
                else:
                    loss.backward()
                step_loss += loss.detach()
            if ds_config:
                grad_norm = float(net.get_global_grad_norm() or 0.0)
            else:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip or float("inf")))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            tokens = int(d.sum([sum(b.tokens for b in batches)])[0])
            if d.device.type == "cuda":
                torch.cuda.synchronize(d.device)
            seconds = time.perf_counter() - t0
            state["tokens"] += tokens
            state["train_seconds"] += seconds
            window["loss"] += float(step_loss) * per_rank_items.item()
            window["targets"] += local_targets
            window["tokens"] += tokens
            window["seconds"] += seconds
            bar.update(1)

            # -------------------------------------------------------------------- log, evaluate, checkpoint
            last = state["step"] == c.max_steps
            if state["step"] % c.log_every == 0 or last:
                loss_sum, targets = d.sum([window["loss"], window["targets"]])
                metrics = {"loss": loss_sum / max(targets, 1), "lr": scheduler.get_last_lr()[0],
                           "grad_norm": grad_norm, "tokens_per_second": window["tokens"] / window["seconds"]}
                if peak:
                    metrics["mfu"] = metrics["tokens_per_second"] * flops_tok / (peak * 1e12 * d.world_size)
                state["history"].append({"step": state["step"], **metrics})
                tracker.log_metrics({**metrics, **_report.system_metrics(d.device)}, step=state["step"])
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_second']:.0f}")
                window = _new_window()
            if state["step"] % c.eval_every == 0 or last:
                val = evaluate()
                state["val_history"].append({"step": state["step"], "val_loss": val})
                tracker.log_metrics({"val_loss": val, "val_perplexity": _report.perplexity(val)}, step=state["step"])
                d.print(f"[train] step {state['step']} | val loss {val:.4f}")
            stop = d.any(sigterm.raised)
            if last or stop or (c.checkpoint_every and state["step"] % c.checkpoint_every == 0):
                url = save_checkpoint()
                if stop and not last:
                    bar.close()
                    raise TrainingInterrupted(state["step"], url)
    bar.close()

    # ------------------------------------------------------------------------ final model, stats, report
    return _finish(c, d, net, model, tokenizer, base_dir, state, sizes, resumed_from, input, output, tracker, scratch,
                   ds_config, peak, flops_tok, seq_len)


def _new_window() -> dict:
    return {"loss": 0.0, "targets": 0, "tokens": 0, "seconds": 0.0}


def command_line(c: TrainConfig, input: str, output: str) -> str:
    """The CLI command that reproduces this resolved config."""
    return shlex.join(["codemill", "train", "--input", input, "--output", output, *config_flags(c)])


def _finish(c, d, net, model, tokenizer, base_dir, state, sizes, resumed_from, input, output, tracker, scratch,
            ds_config, peak, flops_tok, seq_len) -> dict:
    zero3 = bool(ds_config) and ds_config["zero_optimization"]["stage"] == 3
    state_dict = net._zero3_consolidated_16bit_state_dict() if zero3 else None  # a collective: every rank
    val_end = state["val_history"][-1]["val_loss"]
    stats = {
        "steps": state["step"], "tokens": state["tokens"], "train_seconds": round(state["train_seconds"], 3),
        "tokens_per_second": state["tokens"] / max(state["train_seconds"], 1e-9),
        "val_loss_start": state["val_loss_start"], "val_loss_end": val_end,
        "val_perplexity_start": _report.perplexity(state["val_loss_start"]),
        "val_perplexity_end": _report.perplexity(val_end),
        "train_loss_end": state["history"][-1]["loss"] if state["history"] else float("nan"),
        **sizes, "seq_len": seq_len, "global_batch_sequences": c.batch_size * c.grad_accum * d.world_size,
        "world_size": d.world_size, "device": d.device.type, "preset": c.preset,
        "resumed_from_step": resumed_from if resumed_from is not None else 0,
    }
    if peak:
        stats["mfu"] = stats["tokens_per_second"] * flops_tok / (peak * 1e12 * d.world_size)
    if not d.is_main:
        return stats
    local_out = io.local_path(output) if not io.is_s3(output) else os.path.join(scratch, "out")
    model_dir = os.path.join(local_out, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    if c.precision == "bf16":
        model.to(torch.bfloat16)
    model.config.use_cache = True
    model.save_pretrained(model_dir, state_dict=state_dict)
    tokenizer.save_pretrained(model_dir)
    _model.write_generation_config(model_dir, tokenizer, base_dir)
    _report.plot_loss_curve(state["history"], state["val_history"], os.path.join(local_out, "loss_curve.png"))
    with open(os.path.join(local_out, "report.md"), "w", encoding="utf-8") as f:
        f.write(_report.report_markdown(stats, config_dict(c), command_line(c, input, output)))
    if io.is_s3(output):
        io.upload_dir(local_out, output)
    write_stats(output, stats)
    tracker.log_metrics({k: v for k, v in stats.items() if isinstance(v, (int, float))}, step=state["step"])
    tracker.log_artifacts(model_dir, "model")
    tracker.log_artifact(os.path.join(local_out, "loss_curve.png"))
    tracker.log_artifact(os.path.join(local_out, "report.md"))
    return stats

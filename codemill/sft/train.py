"""Supervised fine-tuning with TRL's ``SFTTrainer``: the whole run, top to bottom.

Local, CPU (the tiny model ``codemill train`` makes)::

    codemill sft --model runs/local/train/model --data runs/local/tasks --output runs/local/sft --preset tiny

One A100, DeepSeek-Coder-6.7B-base copied to S3, LoRA::

    codemill sft --model s3://codemill/models/deepseek-coder-6.7b-base --data s3://codemill/runs/RUN/tasks \\
        --output s3://codemill/runs/RUN/sft --preset deepseek-coder-6.7b-lora

Several GPUs: ``accelerate launch -m codemill.cli sft ...`` or ``torchrun --nproc-per-node N -m codemill.cli
sft ... --deepspeed zero2`` (the Trainer picks the distributed setup up from the environment).

codemill tokenizes (``codemill.sft.template``: labels only on assistant tokens) and TRL
packs, batches, trains, evaluates and checkpoints. SIGTERM saves a checkpoint after the
current step and ends with :class:`SftInterrupted`; the same command resumes. Details and
the reasons for TRL over the train stage's own loop: docs/sft.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections import Counter

from codemill import io
from codemill.sft import base as base_model
from codemill.sft import checkpoints, data, export, report, template
from codemill.sft.config import RESUME_MAY_CHANGE, SftConfig, config_flags, resolve
from codemill.stage import InputError, SigtermFlag, config_dict, log_config, write_stats
from codemill.tracking import NoOpTracker, Tracker


class SftInterrupted(RuntimeError):
    """SIGTERM arrived; a checkpoint at ``step`` was written and a rerun resumes from it."""

    def __init__(self, step: int, output: str):
        super().__init__(
            f"sft stopped by SIGTERM after step {step}; checkpoint in {output}/checkpoints; rerun to resume"
        )
        self.step = step


def sft(
    config: SftConfig, model: str, data_dirs: str, output: str, tracker: Tracker | None = None, registry_uri: str = ""
) -> dict:
    """Fine-tune ``model`` on the chat examples under ``data_dirs``; write model/, stats.json, report.md."""
    import torch

    c = resolve(config)
    tracker = tracker or NoOpTracker()
    if c.num_threads:
        torch.set_num_threads(c.num_threads)
    if c.attn_implementation == "flash_attention_2" and not torch.cuda.is_available():
        c.attn_implementation = "sdpa"  # a GPU preset run on CPU (tests, smoke runs)
    log_config("sft", c, tracker)  # resolved (the step table has log_config=False for this)
    scratch = tempfile.mkdtemp(prefix="codemill-sft-")
    try:
        return _run(c, model, data_dirs, output, tracker, registry_uri, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(
    c: SftConfig, model_uri: str, data_dirs: str, output: str, tracker: Tracker, registry_uri: str, scratch: str
) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    # ------------------------------------------------------------------------ base model and chat template
    source = base_model.resolve(model_uri, os.path.join(scratch, "base"), registry_uri)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise InputError(f"{model_uri}: no loadable tokenizer ({e})") from e
    chat_template = template.ensure_chat_template(tokenizer)

    # ------------------------------------------------------------------------ examples -> token ids and labels
    loaded = data.load(data_dirs, c.eval_fraction, c.seed)
    train_rows, train_info = _encode(tokenizer, loaded.train, c.seq_len, loaded.quarantine)
    val_rows, _ = _encode(tokenizer, loaded.val, c.seq_len, loaded.quarantine)
    if not train_rows["input_ids"]:
        reasons = Counter(q["reason"] for q in loaded.quarantine)  # say why, or the user cannot act on it
        why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        raise InputError(
            f"{data_dirs}: no usable training examples ({len(loaded.quarantine)} quarantined"
            f"{': ' + why if why else ''}"
            f"{'; raise --seq-len' if 'too_long' in reasons else ''})"
        )
    print(
        f"[sft] {len(train_rows['input_ids'])} train / {len(val_rows['input_ids'])} val examples, "
        f"{len(loaded.quarantine)} quarantined, chat template: {chat_template}",
        flush=True,
    )

    # ------------------------------------------------------------------------ model
    dtype = torch.bfloat16 if c.precision == "bf16" else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=c.attn_implementation)
    except (OSError, ValueError) as e:
        raise InputError(f"{model_uri}: not a loadable causal LM ({e})") from e
    set_seed(c.seed)  # the new embedding rows are sampled: same seed, same model
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))  # the ChatML tokens; new rows start at the mean embedding
    model.config.use_cache = False

    # ------------------------------------------------------------------------ trainer
    trainer, sigterm_cb, tokens_cb = _trainer(c, model, tokenizer, train_rows, val_rows, output, scratch, tracker)
    summary = {k: v for k, v in config_dict(c).items() if k not in RESUME_MAY_CHANGE}
    resume = _resume_point(c, output, scratch, summary)
    if resume and checkpoints.finished(resume[1]):
        # A rerun of a finished run (a KFP retry after a failed upload): resuming would skip the done
        # batches and take one step past max_steps, so it exports from the last checkpoint instead.
        if _is_complete(output, resume[0]):
            print(f"[sft] {output} is finished at step {resume[0]}; nothing to do", flush=True)
            return io.read_json(io.join(output, "stats.json"))
        print(f"[sft] checkpoint-{resume[0]} is the last step; exporting it without training", flush=True)
        runtime = checkpoints.load_finished(trainer, resume[1])
        start = _val_loss_start(trainer, output, True)
    else:
        with SigtermFlag() as flag:
            sigterm_cb.flag = flag
            start = _val_loss_start(trainer, output, resume is not None)
            result = trainer.train(resume_from_checkpoint=resume[1] if resume else None)
            if flag.raised and trainer.state.global_step < trainer.state.max_steps:
                raise SftInterrupted(trainer.state.global_step, output)
        runtime = float(result.metrics.get("train_runtime") or 0.0)
    val_loss = _evaluate(trainer)

    # ------------------------------------------------------------------------ model/, stats, report
    if not trainer.is_world_process_zero():
        export.save_collective(trainer, os.path.join(scratch, "model"))  # ZeRO-3 gathers on every rank
        return {}
    stats = report.stats(
        trainer.state.log_history,
        start,
        val_loss,
        tokens_cb.session_tokens,
        runtime,
        train_info,
        examples=len(train_rows["input_ids"]),
        val_examples=len(val_rows["input_ids"]),
        loaded=loaded,
        chat_template=chat_template,
        resumed_from_step=resume[0] if resume else 0,
        steps=trainer.state.global_step,
        preset=c.preset,
        lora=c.lora,
    )
    with io.staged_dir(output) as out:
        model_dir = export.save(trainer, tokenizer, os.path.join(out, "model"))
        data.write_quarantine(loaded.quarantine, out)
        paths = report.write(
            out, stats, trainer.state.log_history, config_dict(c), command_line(c, model_uri, data_dirs, output)
        )
        tracker.log_artifacts(model_dir, "model")
        for path in paths:
            tracker.log_artifact(path)
    write_stats(output, stats)
    tracker.log_metrics(report.metrics(stats), step=trainer.state.global_step)
    return stats


def command_line(c: SftConfig, model: str, data_dirs: str, output: str) -> str:
    return shlex.join(["codemill", "sft", "--model", model, "--data", data_dirs, "--output", output, *config_flags(c)])


# ---------------------------------------------------------------------------- data


def _encode(tokenizer, examples: list[data.Example], seq_len: int, quarantine: list[dict]) -> tuple[dict, dict]:
    """Columns ``input_ids``/``labels``; an example left with no assistant token is quarantined."""
    rows: dict[str, list] = {"input_ids": [], "labels": []}
    info = {"tokens": 0, "assistant_tokens": 0, "truncated": 0}
    for ex in examples:
        enc = template.encode(tokenizer, ex.messages, seq_len)
        if enc.assistant_tokens == 0:
            quarantine.append(
                {
                    "reason": "too_long",
                    "detail": f"no assistant token within seq_len {seq_len}",
                    "source": ex.source,
                    "raw": "",
                }
            )
            continue
        rows["input_ids"].append(enc.input_ids)
        rows["labels"].append(enc.labels)
        info["tokens"] += len(enc.input_ids)
        info["assistant_tokens"] += enc.assistant_tokens
        info["truncated"] += enc.truncated
    return rows, info


# ---------------------------------------------------------------------------- trainer


def _trainer(
    c: SftConfig, model, tokenizer, train_rows: dict, val_rows: dict, output: str, scratch: str, tracker: Tracker
):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from codemill.sft.callbacks import CheckpointCallback, SigtermCallback, TrackerCallback

    on_gpu = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=checkpoints.local_dir(output, scratch),
        max_steps=c.max_steps or -1,
        num_train_epochs=c.epochs,
        learning_rate=c.lr,
        per_device_train_batch_size=c.batch_size,
        per_device_eval_batch_size=c.batch_size,
        gradient_accumulation_steps=c.grad_accum,
        lr_scheduler_type="cosine",
        warmup_steps=c.warmup_ratio,
        weight_decay=c.weight_decay,
        max_length=c.seq_len,
        packing=c.packing,
        packing_strategy="bfd",
        padding_free=c.packing,
        gradient_checkpointing=c.gradient_checkpointing,
        bf16=c.precision == "bf16" and on_gpu,
        use_cpu=not on_gpu,
        deepspeed=_deepspeed(c.deepspeed),
        eval_strategy="steps" if val_rows["input_ids"] else "no",
        eval_steps=c.eval_steps,
        logging_steps=c.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=c.save_steps,
        save_total_limit=c.keep_checkpoints,
        seed=c.seed,
        data_seed=c.seed,
        report_to=[],
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        remove_unused_columns=True,
        shuffle_dataset=True,
        disable_tqdm=False,
        save_only_model=False,
    )
    peft_config = None
    if c.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=c.lora_r,
            lora_alpha=c.lora_alpha,
            lora_dropout=c.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    sigterm, tracked = SigtermCallback(), TrackerCallback(tracker)
    callbacks = [tracked, CheckpointCallback(output, scratch, c.keep_checkpoints), sigterm]
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(train_rows),
        eval_dataset=Dataset.from_dict(val_rows) if val_rows["input_ids"] else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return trainer, sigterm, tracked


def _deepspeed(name: str) -> str | None:
    if not name:
        return None
    from codemill.train.config import DEEPSPEED_DIR

    path = os.path.join(DEEPSPEED_DIR, f"{name}.json")
    return path if os.path.isfile(path) else name


def _resume_point(c: SftConfig, output: str, scratch: str, summary: dict) -> tuple[int, str] | None:
    """The latest complete checkpoint, refused when it was made with other settings."""
    saved_url = io.join(output, checkpoints.DIRNAME, "config.json")
    found = checkpoints.fetch_latest(output, scratch) if c.resume else None
    if found is None:
        io.write_json(saved_url, summary)  # what a resume of this run is compared with
        return None
    saved = io.read_json(saved_url) if io.exists(saved_url) else {}
    changed = sorted(k for k, v in summary.items() if k in saved and saved[k] != v)
    if changed:
        raise InputError(
            f"{output}: its checkpoints were made with other settings {changed}; use a new --output or --no-resume"
        )
    print(f"[sft] resuming from checkpoint-{found[0]} of {output}", flush=True)
    return found


def _is_complete(output: str, step: int) -> bool:
    """model/ and stats.json were written for the run that ended at ``step``."""
    stats_url = io.join(output, "stats.json")
    if not io.exists(stats_url) or not io.exists(io.join(output, "model", "config.json")):
        return False
    return io.read_json(stats_url).get("steps") == step


def _evaluate(trainer) -> float:
    return float(trainer.evaluate()["eval_loss"]) if trainer.eval_dataset is not None else float("nan")


def _val_loss_start(trainer, output: str, resumed: bool) -> float:
    """val_loss before the first step; the Trainer's log history restarts with train(), so it is
    kept in the output beside the checkpoints for a resumed run."""
    url = io.join(output, checkpoints.DIRNAME, "val_loss_start.json")
    if resumed and io.exists(url):
        return float(io.read_json(url)["val_loss"])
    value = _evaluate(trainer)
    io.write_json(url, {"val_loss": value})
    return value

"""Trainer callbacks: metrics to the stage's tracker, checkpoints made durable, SIGTERM handled."""

from __future__ import annotations

from transformers import TrainerCallback

from codemill.sft import checkpoints
from codemill.stage import SigtermFlag
from codemill.tracking import Tracker

# Trainer log keys -> the names codemill's stages log (train logs loss, lr, grad_norm, val_loss).
RENAME = {"learning_rate": "lr", "eval_loss": "val_loss"}


class TrackerCallback(TrainerCallback):
    """Every Trainer log (loss, lr, grad_norm, val_loss, tokens) goes to the tracker, rank 0 only."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self.tokens_at_start = 0  # a resumed run counts only the tokens it trained itself
        self.session_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.tokens_at_start = state.num_input_tokens_seen

    def on_train_end(self, args, state, control, **kwargs):
        self.session_tokens = state.num_input_tokens_seen - self.tokens_at_start

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        metrics = {
            RENAME.get(k, k): float(v)
            for k, v in logs.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.tracker.log_metrics(metrics, step=state.global_step)


class CheckpointCallback(TrainerCallback):
    """After the Trainer saved ``checkpoint-N``: upload it (S3 outputs) and mark it complete."""

    def __init__(self, output: str, scratch: str, keep: int):
        self.output, self.scratch, self.keep = output, scratch, keep

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checkpoints.mark_complete(self.output, self.scratch, state.global_step, self.keep)


class SigtermCallback(TrainerCallback):
    """When SIGTERM was received: save a checkpoint after this step and stop (rerun to resume)."""

    flag: SigtermFlag | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.flag is not None and self.flag.raised:
            control.should_save = True
            control.should_training_stop = True
        return control

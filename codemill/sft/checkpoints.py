"""Trainer checkpoints under ``<output>/checkpoints/checkpoint-N/`` and the SIGTERM flag.

A local output is the Trainer's ``output_dir`` itself. For an ``s3://`` output the Trainer
writes into a local staging folder; each checkpoint is uploaded when it is saved and
marked complete (``complete.json``) only after its last file is up, so a preempted upload
is never resumed from. A rerun downloads the highest complete checkpoint and resumes
(transformers restores weights, optimizer, scheduler, RNG states and the data position).
"""

from __future__ import annotations

import os
import re

from codemill import io

DIRNAME = "checkpoints"
MARKER = "complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def local_dir(output: str, scratch: str) -> str:
    """Where the Trainer writes its checkpoints."""
    if io.is_s3(output):
        return os.path.join(scratch, DIRNAME)
    return os.path.join(io.local_path(output), DIRNAME)


def complete_steps(output: str) -> list[int]:
    """Steps of the complete checkpoints under ``output``, ascending."""
    root = io.join(output, DIRNAME)
    if not io.is_s3(root) and not os.path.isdir(io.local_path(root)):
        return []
    steps = []
    for url in io.list_files(root, suffix=MARKER):
        parts = url.replace(os.sep, "/").split("/")
        m = _CHECKPOINT.match(parts[-2]) if len(parts) > 1 else None
        if m:
            steps.append(int(m.group(1)))
    return sorted(steps)


def fetch_latest(output: str, scratch: str) -> tuple[int, str] | None:
    """``(step, local folder)`` of the latest complete checkpoint, downloaded if remote."""
    steps = complete_steps(output)
    if not steps:
        return None
    name = f"checkpoint-{steps[-1]}"
    url = io.join(output, DIRNAME, name)
    if not io.is_s3(url):
        return steps[-1], io.local_path(url)
    return steps[-1], io.download_dir(url, os.path.join(local_dir(output, scratch), name))


def mark_complete(output: str, scratch: str, step: int, keep: int) -> None:
    """Called after the Trainer saved ``checkpoint-step``: upload it (S3), mark it, prune old ones."""
    name = f"checkpoint-{step}"
    url = io.join(output, DIRNAME, name)
    if io.is_s3(output):
        io.upload_dir(os.path.join(local_dir(output, scratch), name), url)
    io.write_json(io.join(url, MARKER), {"step": step})
    for old in complete_steps(output)[:-keep]:
        if io.is_s3(output):  # the Trainer prunes its own (local) folder with save_total_limit
            io.remove_tree(io.join(output, DIRNAME, f"checkpoint-{old}"))


def finished(folder: str) -> bool:
    """The checkpoint in local ``folder`` is the run's last step (its Trainer state reached max_steps)."""
    path = os.path.join(folder, "trainer_state.json")
    if not os.path.isfile(path):
        return False
    state = io.read_json(path)
    return bool(state.get("max_steps")) and state.get("global_step", 0) >= state["max_steps"]


def load_finished(trainer, folder: str) -> float:
    """Put the weights and Trainer state of a finished checkpoint into ``trainer`` without training;
    returns the training seconds, unknown here, as 0."""
    from transformers import TrainerState

    trainer._load_from_checkpoint(folder)  # full weights, or the LoRA adapter into the peft model
    trainer.state = TrainerState.load_from_json(os.path.join(folder, "trainer_state.json"))
    return 0.0

"""Resumable checkpoints under ``<output>/checkpoints/step-NNNNNNNN/``.

A checkpoint is complete when its ``complete.json`` exists; it is written last. Local
outputs are staged in ``.tmp-step-…`` and renamed into place (atomic on one
filesystem); S3 outputs are written to a local staging folder, uploaded, and only then
marked complete, so a preempted upload is never mistaken for a checkpoint. Resume picks
the highest complete step; older ones beyond ``keep`` are removed.

What goes in (``state.pt``, written by rank 0): the :class:`TrainState` fields (step,
tokens, timing, history), the RNG states of torch/numpy/python, and what the backend
returns from ``save`` -- model, optimizer and scheduler state for plain PyTorch/DDP,
nothing under DeepSpeed, whose engine writes its own sharded files into the same folder
(every rank its part).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from codemill import io

DIRNAME = "checkpoints"
MARKER = "complete.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


@dataclass
class TrainState:
    """What the loop carries from step to step; checkpointed with ``asdict`` and loaded back field by field."""

    step: int = 0  # optimizer steps done
    tokens: int = 0  # non-pad tokens trained, all ranks
    train_seconds: float = 0.0  # time inside steps (no evaluation, no checkpointing)
    val_loss_start: float | None = None  # set by the evaluation before step 1
    history: list[dict] = field(default_factory=list)  # {"step", "loss", "lr", "grad_norm", ...} per log
    val_history: list[dict] = field(default_factory=list)  # {"step", "val_loss"} per evaluation


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def checkpoints_url(output: str) -> str:
    return io.join(output, DIRNAME)


def complete_steps(output: str) -> list[int]:
    """Steps of the complete checkpoints under ``output``, ascending."""
    root = checkpoints_url(output)
    if not io.is_s3(root) and not os.path.isdir(io.local_path(root)):
        return []
    steps = []
    for url in io.list_files(root, suffix=MARKER):
        parts = url.replace(os.sep, "/").split("/")
        m = _STEP_DIR.match(parts[-2]) if len(parts) > 1 else None
        if m and parts[-1] == MARKER:
            steps.append(int(m.group(1)))
    return sorted(steps)


def latest(output: str) -> int | None:
    steps = complete_steps(output)
    return steps[-1] if steps else None


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer:
    """Writes and finds checkpoints for one output URL; ``staging`` is a local scratch folder."""

    def __init__(self, output: str, staging: str, keep: int, is_main: bool = True, barrier=lambda: None):
        self.output, self.staging, self.keep = output, staging, keep
        self.is_main, self.barrier = is_main, barrier
        self.root = checkpoints_url(output)

    def _stage_dir(self, step: int) -> str:
        if io.is_s3(self.root):
            return os.path.join(self.staging, DIRNAME, step_name(step))
        return os.path.join(io.local_path(self.root), ".tmp-" + step_name(step))

    def save(self, step: int, write_files, summary: dict) -> str:
        """``write_files(folder)`` writes this rank's files; every rank calls save."""
        stage = self._stage_dir(step)
        final = io.join(self.root, step_name(step))
        if self.is_main:
            shutil.rmtree(stage, ignore_errors=True)
        self.barrier()
        os.makedirs(stage, exist_ok=True)
        write_files(stage)
        if io.is_s3(self.root):
            io.upload_dir(stage, final)  # each rank uploads what it wrote on its node
        self.barrier()
        if self.is_main:
            if io.is_s3(self.root):
                io.write_json(io.join(final, MARKER), {"step": step, **summary})
                shutil.rmtree(stage, ignore_errors=True)
            else:
                io.write_json(os.path.join(stage, MARKER), {"step": step, **summary})
                shutil.rmtree(io.local_path(final), ignore_errors=True)
                os.replace(stage, io.local_path(final))
            self._prune()
        self.barrier()
        return final

    def _prune(self) -> None:
        for step in complete_steps(self.output)[: -self.keep]:
            io.remove_tree(io.join(self.root, step_name(step)))

    def fetch(self, step: int) -> str:
        """A local folder holding checkpoint ``step`` (downloaded once per node from S3)."""
        url = io.join(self.root, step_name(step))
        if not io.is_s3(url):
            return io.local_path(url)
        local = os.path.join(self.staging, "resume", step_name(step))
        if not os.path.exists(os.path.join(local, MARKER)):
            tmp = tempfile.mkdtemp(dir=self.staging)
            io.download_dir(url, tmp)
            shutil.rmtree(local, ignore_errors=True)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            try:
                os.replace(tmp, local)
            except OSError:  # another rank on this node got there first
                shutil.rmtree(tmp, ignore_errors=True)
        return local


def save_state(folder: str, state: TrainState, backend_state: dict) -> None:
    """``state.pt``: the TrainState's fields, the RNG states (``rng``) and ``backend_state``'s keys.

    Flat, not nested, because that is the layout checkpoints had before TrainState; they still resume.
    """
    torch.save({**asdict(state), "rng": rng_state(), **backend_state}, os.path.join(folder, "state.pt"))


def load_state(folder: str) -> tuple[TrainState, dict, dict]:
    """``(state, rng, backend_state)`` as :func:`save_state` wrote them."""
    # RNG states hold numpy arrays and tuples, so this is not a weights-only load; the
    # file is one this stage wrote into its own output.
    saved = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=False)
    state = TrainState(**{f.name: saved.pop(f.name) for f in fields(TrainState)})
    return state, saved.pop("rng"), saved

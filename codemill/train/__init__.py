"""The train stage: a Hugging Face causal LM trained on pack's token shards.

``train(config, input, output, tracker)`` runs the whole stage (see ``loop.py`` for the
loop, and its docstring for the local and ``torchrun`` commands); ``run_step`` is what
the KFP component calls (one process, ``torchrun`` over the pod's GPUs, or a Kubeflow
Trainer ``TrainJob`` over several nodes). Heavy imports (torch, transformers) load on
first use, so ``codemill --help`` stays fast.
"""

from __future__ import annotations

from codemill.train.config import TrainConfig, load_preset, preset_names, resolve

__all__ = [
    "TrainConfig",
    "TrainingInterrupted",
    "command_line",
    "load_preset",
    "preset_names",
    "resolve",
    "run_step",
    "train",
]


def __getattr__(name):
    if name in ("train", "TrainingInterrupted", "command_line"):
        from codemill.train import loop as _train

        return getattr(_train, name)
    if name == "run_step":
        from codemill.train.launch import run_step

        return run_step
    raise AttributeError(f"module 'codemill.train' has no attribute {name!r}")

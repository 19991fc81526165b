"""How the model is driven on its devices: plain PyTorch (one process, or DDP under
torchrun) or a DeepSpeed ZeRO engine. The loop calls the same methods on either, so it
has no DDP-vs-DeepSpeed branch::

    loss = backend.loss(batch, num_items, sync=last_micro)   # forward under autocast
    backend.backward(loss)
    grad_norm = backend.clip_grad_norm()
    backend.step()
    backend.zero_grad()

plus ``lr()``, ``save(folder)`` / ``load(folder, saved)`` for checkpoints, and
``unwrap()`` / ``export_state_dict()`` for the final Hugging Face model. The optimizer is
AdamW and the schedule warmup + cosine in both (:mod:`codemill.train.optim`).
"""

from __future__ import annotations

import contextlib

import torch

from codemill.stage import InputError
from codemill.train import optim as _optim
from codemill.train.config import TrainConfig
from codemill.train.dist import Dist


def check_available(c: TrainConfig) -> None:
    """``--deepspeed`` needs GPUs and the package; fail before anything is loaded."""
    if not c.deepspeed:
        return
    if not torch.cuda.is_available():
        raise InputError(
            f"--deepspeed {c.deepspeed}: DeepSpeed needs GPUs and this machine has none; drop the flag to train on CPU"
        )
    try:
        import deepspeed  # noqa: F401
    except ImportError as e:
        raise InputError(f"--deepspeed {c.deepspeed}: the deepspeed package is not installed") from e


def create(model, c: TrainConfig, d: Dist, ds_config: dict | None) -> Backend:
    """The backend for this run: DeepSpeed when ``ds_config`` is given, else plain/DDP."""
    return DeepSpeedBackend(model, c, d, ds_config) if ds_config else TorchBackend(model, c, d)


class _Backend:
    """What both backends share: the forward pass, the schedule's learning rate, the bare model."""

    net: torch.nn.Module  # what forward goes through (DDP wrapper, DeepSpeed engine or the model)

    def __init__(self, model, c: TrainConfig, d: Dist):
        self.model, self.device = model, d.device
        self.autocast = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=c.precision == "bf16")

    def _accumulating(self, sync: bool):
        return contextlib.nullcontext()

    def loss(self, batch, num_items, sync: bool = True) -> torch.Tensor:
        """The model's loss on ``batch``; ``sync=False`` leaves gradients unreduced (an early micro-batch)."""
        with self._accumulating(sync), self.autocast:
            return self.net(**batch.to(self.device).model_inputs(), num_items_in_batch=num_items).loss

    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def unwrap(self):
        """The Hugging Face model itself (what ``save_pretrained`` is called on)."""
        return self.model


class TorchBackend(_Backend):
    """One process, or DDP when the world is larger than one."""

    def __init__(self, model, c: TrainConfig, d: Dist):
        super().__init__(model, c, d)
        self.optimizer = _optim.adamw(model, c, fused=d.device.type == "cuda")
        self.scheduler = _optim.scheduler_for(self.optimizer, c)
        self.grad_clip = c.grad_clip
        self.net = model
        if d.active:
            cuda = d.device.type == "cuda"
            self.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if cuda else None)

    def _accumulating(self, sync: bool):
        # DDP all-reduces gradients on every backward unless the forward ran under no_sync.
        return contextlib.nullcontext() if sync or self.net is self.model else self.net.no_sync()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm(self) -> float:
        """The global gradient norm before clipping; clips to ``grad_clip`` (0 = no clipping)."""
        return float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip or float("inf")))

    def step(self) -> None:
        self.optimizer.step()
        self.scheduler.step()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, folder: str) -> dict:
        """What goes into the trainer's ``state.pt`` beside the TrainState (every rank returns it)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load(self, folder: str, saved: dict) -> None:
        self.model.load_state_dict(saved.pop("model"))
        self.optimizer.load_state_dict(saved.pop("optimizer"))
        self.scheduler.load_state_dict(saved.pop("scheduler"))

    def export_state_dict(self) -> dict | None:
        return None  # save_pretrained reads the model's own weights


class DeepSpeedBackend(_Backend):
    """A ZeRO engine from ``deepspeed.initialize`` with this stage's AdamW groups and schedule.

    The engine counts micro-batches itself: ``step()`` must follow every backward and only
    updates at the accumulation boundary, where it also clips (``gradient_clipping``).
    """

    def __init__(self, model, c: TrainConfig, d: Dist, ds_config: dict):
        import deepspeed

        super().__init__(model, c, d)
        self.zero3 = ds_config["zero_optimization"]["stage"] == 3
        self.net, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model,
            model_parameters=_optim.param_groups(model, c.weight_decay),
            config=ds_config,
            lr_scheduler=lambda opt: _optim.scheduler_for(opt, c),
        )

    def backward(self, loss: torch.Tensor) -> None:
        self.net.backward(loss, scale_wrt_gas=False)  # the loss is already normalised over the step
        self.net.step()

    def clip_grad_norm(self) -> float:
        return float(self.net.get_global_grad_norm() or 0.0)

    def step(self) -> None:
        pass  # done by the engine's step() in backward at the last micro-batch

    def zero_grad(self) -> None:
        pass  # the engine zeroes after its update

    def save(self, folder: str) -> dict:
        """The engine writes its sharded model/optimizer/schedule files (every rank its own)."""
        self.net.save_checkpoint(folder, tag="ds", save_latest=False)
        return {}

    def load(self, folder: str, saved: dict) -> None:
        self.net.load_checkpoint(folder, tag="ds", load_optimizer_states=True, load_lr_scheduler_states=True)

    def export_state_dict(self) -> dict | None:
        """ZeRO-3 holds a shard per rank: gather a 16-bit state dict (a collective, every rank calls it)."""
        return self.net._zero3_consolidated_16bit_state_dict() if self.zero3 else None


Backend = TorchBackend | DeepSpeedBackend

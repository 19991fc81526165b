"""Who we are in a distributed run, and the three collectives the loop needs.

One process per GPU, started by ``torchrun`` (env ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``),
the DeepSpeed launcher, or a Kubeflow Trainer runtime (torch: ``PET_*`` read by torchrun;
DeepSpeed: MPI, which ``deepspeed.init_distributed`` discovers). A plain ``python`` run is
a world of one on CPU or one GPU, and every collective is then a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (all ranks stop at the same step)."""
        return self.sum([float(flag)])[0] > 0

    def print(self, *args) -> None:
        if self.is_main:
            print(*args, flush=True)


def setup(use_deepspeed: bool) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1")))
    cuda = torch.cuda.is_available()
    if use_deepspeed:
        import deepspeed

        deepspeed.init_distributed(dist_backend="nccl")
    elif world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0")))
    else:
        rank, world, local = 0, 1, 0
    if cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return Dist(rank, world, local, device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

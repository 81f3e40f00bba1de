"""torchrun integration: one process per device, gloo on CPU, NCCL on GPU (no home-made layer)."""

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from codo_aug.errors import InputError


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str) -> Dist:
    """Join the torchrun job described by the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def require_device(name: str) -> torch.device:
    """The named device, or InputError when it is CUDA and this machine has none. `cuda:N` also becomes
    the current CUDA device: what is not placed explicitly (nvJPEG decodes, new streams, compiled kernels'
    workspaces) would otherwise land on GPU 0."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    return device


def device_for(name: str, d: Dist) -> torch.device:
    """The process's device: cuda:LOCAL_RANK under torchrun on GPUs, else as named."""
    return (torch.device(f"cuda:{d.local_rank}") if name.startswith("cuda") and d.world > 1
            else torch.device(name))


def gather(obj: Any, d: Dist) -> list[Any]:
    """`obj` of every rank, in rank order (a collective: every rank must call it)."""
    if d.world == 1:
        return [obj]
    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def close(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()

"""Several training processes (torchrun, DDP) or one: which process this is, its device, and the few collective
calls the run makes (the main process's clock decides when to stop; everyone waits for the files at the end)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_option: str) -> Distributed:
    """torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    ranks = Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_option != "cpu" and torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return ranks


def pick_device(option: str, ranks: Distributed) -> torch.device:
    """The device of this process for a checked --device option (trainer.cli.check_device): `cuda` means the GPU
    of this process's local rank."""
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option.startswith("cuda"):
        if option == "cuda":
            option = f"cuda:{ranks.local_rank}"
        torch.cuda.set_device(torch.device(option))
    return torch.device(option)


def wrap_for_processes(module: nn.Module, ranks: Distributed, device: torch.device) -> nn.Module:
    """DDP around `module` when there are several processes (it averages the gradients); the module itself if not."""
    if ranks.world == 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, broadcast_buffers=False)


def main_process_decides(flag: bool, ranks: Distributed, device: torch.device) -> bool:
    """The main process's `flag`, in every process (so that all of them stop at the same step)."""
    if ranks.world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def wait_for_all(ranks: Distributed) -> None:
    if ranks.world > 1:
        dist.barrier()


def shut_down() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

"""One process or many: the device and its precision, and DDP under ``torchrun`` (rank 0 alone writes files)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainer.config import UsageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def average(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over all processes (itself when alone)."""
        if not self.distributed:
            return values
        total = values.clone()
        dist.all_reduce(total)
        return total / self.world


def launched_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when launched directly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(flag: str, local_rank: int = 0) -> torch.device:
    """--device auto|cpu|cuda -> a torch.device; UsageError when CUDA is asked for but absent."""
    if flag == "cpu" or (flag == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to PyTorch")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device_flag: str) -> Processes:
    """Join the torchrun process group when there is one (NCCL on CUDA, gloo on CPU)."""
    world = launched_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_flag, local_rank)
    if world == 1:
        return Processes(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def wrap(module: nn.Module, processes: Processes) -> nn.Module:
    """DDP around one network; each network has its own, as each has its own backward per step."""
    if not processes.distributed:
        return module
    ids = [processes.device.index] if processes.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()


def replicas_agree(modules: dict[str, nn.Module], processes: Processes) -> bool:
    """Whether every process holds the same weights (a checksum per network, gathered)."""
    if not processes.distributed:
        return True
    sums = torch.stack(
        [torch.stack([p.detach().double().sum() for p in m.parameters()]).sum() for m in modules.values()]
    ).to(processes.device)  # (networks,)
    gathered = [torch.empty_like(sums) for _ in range(processes.world)]
    dist.all_gather(gathered, sums)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def teardown(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()


def precision(amp: bool, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """--amp: bf16 autocast on CPU and on GPUs that support it, else fp16 with a GradScaler.

    On a CPU with AVX512-BF16 this is much faster than float32 (figures: docs/benchmarks.md).
    """
    if not amp:
        return None, None
    if device.type != "cuda":
        return torch.bfloat16, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")

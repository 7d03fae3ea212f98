"""torchrun / DDP helpers. Single-process runs see rank 0 of world size 1 and do nothing special."""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist


def world_size() -> int:
    return torch_dist.get_world_size() if torch_dist.is_initialized() else 1


def rank() -> int:
    return torch_dist.get_rank() if torch_dist.is_initialized() else 0


def is_main() -> bool:
    """Only the main process writes checkpoints, logs and plots, and validates."""
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun describes in the environment; False when not under torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or torch_dist.is_initialized():
        return torch_dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch_dist.init_process_group(backend=backend)
    return True


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def barrier() -> None:
    if torch_dist.is_initialized():
        torch_dist.barrier()


def broadcast_flag(flag: bool) -> bool:
    """Share rank 0's decision (e.g. stop on the time budget) so every rank leaves the loop together."""
    if not torch_dist.is_initialized():
        return flag
    value = torch.tensor([int(flag)])
    torch_dist.broadcast(value, src=0)
    return bool(value.item())


def broadcast_object(value):
    """Rank 0's ``value`` on every rank (e.g. the run folder only rank 0 may create)."""
    if not torch_dist.is_initialized():
        return value
    holder = [value]
    torch_dist.broadcast_object_list(holder, src=0)
    return holder[0]


def cleanup() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()

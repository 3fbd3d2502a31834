"""torch.distributed helpers: one process per device, started by torchrun (or a single process)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init(device: torch.device) -> tuple[int, int]:
    """Join the process group that torchrun describes in the environment; return (rank, world_size).

    gloo on CPU, nccl on CUDA. Without torchrun's variables (or WORLD_SIZE=1): (0, 1), no group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """A summed copy over processes (the tensor itself when not distributed)."""
    if not is_initialized():
        return tensor
    out = tensor.clone()
    dist.all_reduce(out)
    return out


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] (picklable objects); [obj] when not distributed."""
    if not is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank `src`'s obj on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


def local_device(kind: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> this process's device (torchrun's LOCAL_RANK picks the GPU)."""
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    if kind != "cpu":
        raise ValueError(f"unknown device '{kind}'; valid: auto, cpu, cuda")
    return torch.device("cpu")

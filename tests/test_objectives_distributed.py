"""EQLv2's gradient statistics are summed across processes (all-reduce SUM); sync_stats=False keeps them local.

Two CPU processes with the gloo backend, each with its own batch.
"""
from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rog.losses.objectives import build_objective

C = 3


def batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(rank)
    return torch.randn(6, C + 1, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, C, C, rank])


def local_stats(sync: bool, ranks: list[int]) -> torch.Tensor:
    """[2, C] (pos_grad, neg_grad) after one step on each of `ranks`' batches, without distribution."""
    out = torch.zeros(2, C, dtype=torch.float64)
    for rank in ranks:
        objective = build_objective("eqlv2", C, sync_stats=sync)
        objective.loss(*batch(rank))
        out += torch.stack([objective.pos_grad, objective.neg_grad])
    return out


def worker(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for sync in (True, False):
            objective = build_objective("eqlv2", C, sync_stats=sync)
            objective.loss(*batch(rank))
            results[(rank, sync)] = torch.stack([objective.pos_grad, objective.neg_grad])
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_eqlv2_statistics_are_summed_over_processes_unless_asked_not_to():
    results = mp.Manager().dict()
    mp.spawn(worker, args=(free_port(), results), nprocs=2, join=True)
    summed = local_stats(True, [0, 1])
    for rank in (0, 1):
        torch.testing.assert_close(results[(rank, True)], summed)
        torch.testing.assert_close(results[(rank, False)], local_stats(False, [rank]))
    assert not torch.allclose(results[(0, False)], results[(1, False)])

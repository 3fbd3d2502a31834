"""Optimizer and learning-rate schedule: linear warmup, then step decay, as a function of the iteration alone.

Being a pure function of the iteration, the schedule resumes exactly from any checkpoint.
"""
from __future__ import annotations

import torch

from rog.config import step_iterations  # noqa: F401  (the rule lives with the params it reads)


def lr_factor(iteration: int, iterations: int, warmup_iterations: int, warmup_ratio: float,
              steps: list[float], gamma: float) -> float:
    """Multiplier of the base lr for 0-based `iteration`.

    Warmup: from `warmup_ratio` to 1 linearly over `warmup_iterations` (mmdet/detectron2 'linear').
    Steps: `steps` are fractions of `iterations`; the lr is multiplied by `gamma` at each one passed.
    """
    factor = 1.0
    if iteration < warmup_iterations:
        alpha = iteration / warmup_iterations
        factor = warmup_ratio * (1 - alpha) + alpha
    passed = sum(iteration >= boundary for boundary in step_iterations(iterations, steps))
    return factor * gamma ** passed


OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(parameters, train_params: dict) -> torch.optim.Optimizer:
    """`train.optimizer` over `parameters`: SGD with momentum (the paper's), or AdamW (beta1 = train.momentum,
    decoupled weight decay train.weight_decay)."""
    name = train_params.get("optimizer", "sgd")
    lr, momentum, decay = float(train_params["lr"]), float(train_params["momentum"]), float(train_params["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, betas=(momentum, 0.999), weight_decay=decay)
    raise ValueError(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, train_params: dict) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over `lr_factor` with the train section's warmup and steps."""
    for s in train_params["lr_steps"]:
        if not 0 < float(s) <= 1:
            raise ValueError(f"train.lr_steps must be fractions of the iterations in (0, 1], got {s}")

    def factor(iteration: int) -> float:
        return lr_factor(iteration, int(train_params["iterations"]), int(train_params["warmup_iterations"]),
                         float(train_params["warmup_ratio"]), list(train_params["lr_steps"]),
                         float(train_params["lr_gamma"]))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

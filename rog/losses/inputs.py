"""Input checks shared by every box-classification loss.

Convention used throughout `rog.losses`: logits are [R, K] for R RoIs, whose first C columns are the
foreground classes (K = C, C+1 or C+2 depending on the objective); labels are [R] integers in 0..C,
where C means background.
"""
from __future__ import annotations

import math
import numbers
from typing import Mapping

import torch


class NonFiniteLogits(ValueError):
    """Logits hold NaN or inf: bad input to a loss, or, in training, weights blown up by the last step."""


def check_finite(owner: str, **options) -> None:
    """ValueError naming the option unless each value is a finite real number (not a bool)."""
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{owner}: option {key} must be a finite number, got {value!r}")


def check_option(owner: str, key: str, value, default) -> None:
    """ValueError naming the option unless `value` has the type of its `default`: a bool for a bool,
    a finite integer for an int, a finite real number for a float; other defaults are not checked."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{owner}: option {key} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{owner}: option {key} must be an integer, got {value!r}")
    elif isinstance(default, float):
        check_finite(owner, **{key: value})


def option_errors(owner: str, known: Mapping, given: Mapping) -> dict[str, str]:
    """{option: why} for each option of `given` that `known` (option -> default) lacks, or whose value is not
    of its default's type (check_option)."""
    errors = {}
    for key, value in given.items():
        if key not in known:
            errors[key] = f"{owner} has no option {key!r}; valid: {', '.join(sorted(known))}"
            continue
        try:
            check_option(owner, key, value, known[key])
        except ValueError as err:
            errors[key] = str(err)
    return errors


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """logits as float32 when they are half or bfloat16 (sums over [R, K] terms overflow float16)."""
    if isinstance(logits, torch.Tensor) and logits.is_floating_point() and torch.finfo(logits.dtype).bits < 32:
        return logits.float()
    return logits


def check_logits_labels(name: str, logits: torch.Tensor, labels: torch.Tensor, num_classes: int,
                        min_columns: int | None = None) -> None:
    """Raise ValueError, prefixed by `name`, unless logits [R, >=min_columns] and labels [R] in 0..C are sane."""
    min_columns = num_classes if min_columns is None else min_columns
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name}: logits and labels must be tensors, got "
                         f"{type(logits).__name__} and {type(labels).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"{name}: logits must be [R, K], got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"{name}: logits must be floating point, got {logits.dtype}")
    if logits.shape[1] < min_columns:
        raise ValueError(f"{name}: logits have {logits.shape[1]} columns, need at least {min_columns} "
                         f"for {num_classes} classes")
    if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"{name}: labels must be [R] = [{logits.shape[0]}] to match logits "
                         f"{tuple(logits.shape)}, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"{name}: labels must be integer class indices, got {labels.dtype}")
    if labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high > num_classes:
            bad = labels[(labels < 0) | (labels > num_classes)]
            raise ValueError(f"{name}: labels must lie in 0..{num_classes} ({num_classes} = background), "
                             f"got {bad.numel()} outside, e.g. {int(bad[0])}")
    if bool(torch.isfinite(logits.sum())):  # one cheap pass; a non-finite sum may still be overflow
        return
    finite = torch.isfinite(logits)
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        row, col = (int(v) for v in bad[0])
        raise NonFiniteLogits(f"{name}: logits contain {bad.shape[0]} non-finite values (NaN or inf), "
                         f"first at row {row}, column {col}: {logits[row, col].item()}")

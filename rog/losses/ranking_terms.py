"""The detector's ranking terms by name: params.yaml's `model.ranking: {name, weight, params}`.

    term = build_ranking("gap", num_classes=C, weight=1.0, delta=0.5)   # or None for name null
    value = term(logits, labels)            # logits [R, K >= C], labels [R] in 0..C (C = background)
    value = term(logits, labels, ious)      # terms with `needs_ious` (RS loss): ious [R]

`weight` is lambda (the term's loss_weight); `params` are the term's own options, each defaulting to its
constructor's: GAP's delta, gamma, weighting, exclude_fg, rank_offset, sync_counts; AP loss's and RS
loss's delta (AP loss 1.0, its paper's; RS loss 0.5). class_counts go to a term that takes them only with
weighting 'dataset' (GAP's; its online counts start from zero in the detector, as the official code).

Runs trained before model.ranking stored the term as `model.gap: {enabled, loss, loss_weight, delta,
...}`; `from_gap_section` reads that form and `as_gap_section` writes it (rog.engine.rundir hashes a
run's params with it, so that a run keeps the identity it was trained under).
"""
from __future__ import annotations

import inspect
from typing import Mapping

from torch import nn

from rog.losses.counts import CategoryCounts
from rog.losses.gap import GAPLoss
from rog.losses.inputs import option_errors
from rog.losses.ranking import APLoss, RSLoss

RANKING_TERMS: dict[str, type[nn.Module]] = {
    "gap": GAPLoss,
    "ap_loss": APLoss,
    "rs_loss": RSLoss,
}
_GIVEN = ("num_classes", "loss_weight", "class_counts")  # set by the builder, not by `params`


def ranking_params(name: str) -> dict[str, object]:
    """The options of ranking term `name` and their defaults (num_classes, loss_weight, class_counts excluded)."""
    parameters = inspect.signature(_lookup(name)).parameters
    return {key: p.default for key, p in parameters.items() if key not in _GIVEN}


def build_ranking(name: str, num_classes: int, weight: float = 1.0, class_counts: CategoryCounts | None = None,
                  **params) -> nn.Module:
    """Ranking term `name` for C = num_classes with lambda = weight; ValueError naming a bad option."""
    errors = option_errors(name, ranking_params(name), params)
    if errors:
        raise ValueError("; ".join(errors.values()))
    if "class_counts" in inspect.signature(_lookup(name)).parameters and params.get("weighting") == "dataset":
        params["class_counts"] = class_counts
    return RANKING_TERMS[name](num_classes, loss_weight=weight, **params)


def from_gap_section(gap: Mapping) -> dict:
    """An old `model.gap` mapping -> the `model.ranking` mapping that builds the same term (options equal
    to the term's defaults are left out; a disabled one keeps those that differ from GAP's)."""
    enabled = bool(gap.get("enabled", False))
    kind = gap.get("loss", "gap") if enabled else "gap"
    defaults = ranking_params(kind)
    params = {k: v for k, v in gap.items() if k in defaults and v != defaults[k]}
    return {"name": kind if enabled else None, "weight": gap.get("loss_weight", 1.0), "params": params}


def as_gap_section(ranking: Mapping) -> dict:
    """A `model.ranking` mapping -> the complete old `model.gap` mapping of the same term (every option,
    the term's defaults filled in, GAP's for the options it lacks), as runs stored it."""
    name = ranking.get("name")
    own = ranking_params(name) if name is not None else {}
    return {"enabled": name is not None, "loss": name or "gap", "loss_weight": ranking.get("weight", 1.0),
            **ranking_params("gap"), **own, **(ranking.get("params") or {})}


def _lookup(name: str) -> type[nn.Module]:
    if name not in RANKING_TERMS:
        raise ValueError(f"unknown ranking term {name!r}; valid: {', '.join(RANKING_TERMS)}")
    return RANKING_TERMS[name]

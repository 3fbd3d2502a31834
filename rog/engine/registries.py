"""The code's registries by the kind the schema names them (rog.schema.Registered), and the full check
of a run's params against them.

rog.schema sits at the bottom of the package and cannot import the registries, which live in the layers
above (losses, data, models, engine); this module, at the top of the ML core, holds them all and binds them.
rog.config.resolve_run checks types and ranges; `check_params` here adds the registry names. The
training, evaluation and pipeline entry points call it before they build anything.
"""
from __future__ import annotations

from typing import Mapping

from rog import schema
from rog.data.registry import DATASETS
from rog.engine.schedule import OPTIMIZERS
from rog.losses.gap import WEIGHTINGS
from rog.losses.objectives import OBJECTIVES
from rog.models.backbones import BACKBONES
from rog.models.builder import ARCHS, MASK_FEATURES, RANKING_LOSSES

REGISTRIES: dict[str, tuple[str, ...]] = {
    "datasets": tuple(DATASETS),
    "archs": tuple(ARCHS),
    "backbones": tuple(BACKBONES),
    "mask_features": tuple(MASK_FEATURES),
    "objectives": tuple(OBJECTIVES),
    "ranking_losses": tuple(RANKING_LOSSES),
    "gap_weightings": tuple(WEIGHTINGS),
    "optimizers": tuple(OPTIMIZERS),
}


def check_params(params: Mapping) -> dict:
    """rog.schema.check_params with every registry name checked too (ParamsError listing each problem)."""
    return schema.check_params(params, REGISTRIES)


def problems(params: Mapping) -> list[str]:
    return schema.problems(params, REGISTRIES)

"""The code's registries by the kind the schema names them (rog.schema.Registered), and the full check
of a run's params against them.

rog.schema sits at the bottom of the package and cannot import the registries, which live in the layers
above (losses, data, models, engine); this module, at the top of the ML core, holds them all and binds
them. rog.config.resolve_run checks types and ranges; `check_params` here adds the registry names and the
keys of the open sections (model.objective.params, model.ranking.params: the named entry's options, each
of its default's type). The training, evaluation and pipeline entry points call it before they build anything.
"""
from __future__ import annotations

from typing import Callable, Mapping

from rog import schema
from rog.data.registry import DATASETS
from rog.engine.schedule import OPTIMIZERS
from rog.losses.inputs import option_errors
from rog.losses.objectives import OBJECTIVES, objective_params
from rog.losses.ranking_terms import RANKING_TERMS, ranking_params
from rog.models.backbones import BACKBONES
from rog.models.builder import ARCHS, MASK_FEATURES

REGISTRIES: dict[str, tuple[str, ...]] = {
    "datasets": tuple(DATASETS),
    "archs": tuple(ARCHS),
    "backbones": tuple(BACKBONES),
    "mask_features": tuple(MASK_FEATURES),
    "objectives": tuple(OBJECTIVES),
    "ranking_terms": tuple(RANKING_TERMS),
    "optimizers": tuple(OPTIMIZERS),
}
# sections {name, params} whose params are the options of the entry `name` names, with their defaults
OPEN_SECTIONS: dict[str, tuple[dict, Callable[[str], dict]]] = {
    "model.objective": (OBJECTIVES, objective_params),
    "model.ranking": (RANKING_TERMS, ranking_params),
}


def option_problems(params: Mapping) -> list[str]:
    """One line per key of an open section's params that its entry has no option for, or whose value is
    not of the option's default's type: 'model.ranking.params.delta = 'abc': gap: option delta must be ...'."""
    found = []
    for key, (registry, options) in OPEN_SECTIONS.items():
        section = schema.lookup(params, key)
        if not isinstance(section, Mapping) or section.get("name") not in registry:
            continue  # absent, or the name is refused by its rule
        given = section.get("params") or {}
        if isinstance(given, Mapping):  # else refused by its rule
            errors = option_errors(section["name"], options(section["name"]), given)
            found += [f"{key}.params.{option} = {given[option]!r}: {why}" for option, why in errors.items()]
    return found


def check_params(params: Mapping) -> dict:
    """rog.schema.check_params with every registry name and open section's option checked too (ParamsError
    listing each problem)."""
    found = problems(params)
    if found:
        raise schema.ParamsError("invalid parameter" + ("s" if len(found) > 1 else "") + ": " + "; ".join(found))
    return schema.check_params(params, REGISTRIES)


def problems(params: Mapping) -> list[str]:
    return schema.problems(params, REGISTRIES) + option_problems(params)

"""Box-classification objectives by name: `build_objective(name, num_classes, class_counts, **params)`.

Every objective follows the interface of `rog.losses.objective_base.Objective`:

    obj = build_objective("eqlv2", num_classes=C)           # params come from params.yaml
    classifier = obj.make_classifier(1024)                   # [R, 1024] -> [R, obj.num_outputs]
    terms = obj.loss(classifier(x), labels)                  # {"loss_cls": ...}; labels in 0..C
    probs = obj.scores(classifier(x))                        # [R, C]

| name        | columns | counts needed        | scores                         |
|-------------|---------|----------------------|--------------------------------|
| sigmoid_ce  | C+1     | -                    | sigmoid(z_c)(1-sigmoid(z_bg))  |
| softmax_ce  | C+1     | -                    | softmax, background dropped    |
| eql         | C       | image counts         | sigmoid(z_c)                   |
| eqlv2       | C+1     | - (online gradients) | sigmoid(z_c)(1-sigmoid(z_bg))  |
| seesaw      | C+2     | - (online RoI counts)| softmax_C(z) P(fg)             |
| ecm         | C+1     | instance counts      | sigmoid(z_c)(1-sigmoid(z_bg))  |
| gol         | C       | image counts         | exp(-exp(-z_c))                |
| federated   | C+1     | image counts         | sigmoid(z_c)                   |
| norcal      | C+1     | image counts         | softmax(z_c - gamma log n_c; z_bg), bg dropped |
| none        | C       | -                    | sigmoid(z_c); a ranking loss trains it alone  |

`NorCal(objective, class_counts, gamma)` calibrates any trained objective at evaluation.
"""
from __future__ import annotations

import inspect
from typing import Callable

from rog.losses.counts import CategoryCounts
from rog.losses.calibration import NorCal, norcal_softmax
from rog.losses.cross_entropy import SigmoidCE, SoftmaxCE
from rog.losses.ecm import ECMLoss
from rog.losses.eql import EQL
from rog.losses.eqlv2 import EQLv2
from rog.losses.federated import FederatedLoss
from rog.losses.gol import GumbelDropLoss
from rog.losses.objective_base import NormedLinear, Objective
from rog.losses.ranking_only import RankingOnly
from rog.losses.seesaw import SeesawLoss

OBJECTIVES: dict[str, Callable[..., Objective | NorCal]] = {
    "sigmoid_ce": SigmoidCE,
    "softmax_ce": SoftmaxCE,
    "eql": EQL,
    "eqlv2": EQLv2,
    "seesaw": SeesawLoss,
    "ecm": ECMLoss,
    "gol": GumbelDropLoss,
    "federated": FederatedLoss,
    "norcal": norcal_softmax,
    "none": RankingOnly,
}

__all__ = ["OBJECTIVES", "build_objective", "objective_params", "NorCal", "NormedLinear", "Objective"]


def objective_params(name: str) -> dict[str, object]:
    """The knobs of objective `name` and their defaults (num_classes and class_counts excluded)."""
    factory = _lookup(name)
    params = inspect.signature(factory).parameters
    return {key: p.default for key, p in params.items() if key not in ("num_classes", "class_counts")}


def build_objective(name: str, num_classes: int, class_counts: CategoryCounts | None = None,
                    **params) -> Objective | NorCal:
    """Construct objective `name` for C = num_classes; class_counts are passed to those that use them."""
    factory = _lookup(name)
    known = objective_params(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(sorted(known))}")
    if "class_counts" in inspect.signature(factory).parameters:
        params["class_counts"] = class_counts
    return factory(num_classes, **params)


def _lookup(name: str) -> Callable[..., Objective | NorCal]:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid: {', '.join(sorted(OBJECTIVES))}")
    return OBJECTIVES[name]

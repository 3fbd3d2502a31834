"""NorCal (Pan et al., NeurIPS 2021): post-hoc normalised calibration of a trained classifier's scores.

Softmax heads (C+1 columns, background last), NorCal's default ("gamma", "exps", renormalised):

    p = softmax([z_c - gamma log n_c  for c < C ;  z_bg])           n_c = training image count

i.e. exp(z_c) is divided by n_c^gamma, the background exp is left as it is, and the whole is
renormalised. renormalize=False gives softmax(z)_c / n_c^gamma (NorCal's RENORM=False).

Adaptation for every other head (documented here, not part of NorCal's code): the same shift of the
foreground logits, z_c -> z_c - gamma log n_c, is applied *before* the head's own score function,
which is left unchanged; background and objectness columns are untouched. For a sigmoid head this is
sigmoid(z_c - gamma log n_c) = e^z_c / n_c^gamma / (e^z_c / n_c^gamma + 1): NorCal applied to each
binary "c vs. not c" softmax, the "not c" exp left uncalibrated as NorCal leaves the background.
With an objectness column (sigmoid CE, EQLv2, ECM) the score is sigmoid(z_c - gamma log n_c)
(1 - sigmoid(z_bg)); for Seesaw, softmax_C(z - gamma log n) x P(fg) (renormalised over the classes,
the objectness untouched); for GOL, the Gumbel CDF of the shifted logit. With renormalize=False the
head's scores are multiplied by n_c^-gamma instead.

Training is unchanged: `loss` is the wrapped objective's. Counts below 1 count as 1.
"""
from __future__ import annotations

import torch
from torch import nn

from rog.losses.counts import CategoryCounts
from rog.losses.cross_entropy import SoftmaxCE
from rog.losses.objective_base import Objective, require_counts


class NorCal(Objective):
    """Wrap a (trained) objective; `scores` become NorCal-calibrated, everything else is delegated.

    gamma: calibration strength (NorCal's default 0.0 means no calibration; it is tuned on validation).
    To calibrate a trained model, load its state_dict first, then wrap its objective: the wrapper's
    own state_dict nests the objective's buffers under `objective.`.
    """

    name = "norcal"

    def __init__(self, objective: Objective, class_counts: CategoryCounts | None = None, gamma: float = 0.0,
                 renormalize: bool = True):
        if not isinstance(objective, Objective):
            raise ValueError(f"norcal: wraps an Objective, got {type(objective).__name__}")
        super().__init__(objective.num_classes, objective.loss_weight, objective.normed_linear,
                         objective.temperature)
        counts = require_counts(self.name, class_counts, objective.num_classes, "image counts")
        self.objective = objective
        self.gamma = float(gamma)
        self.renormalize = bool(renormalize)
        self.register_buffer("log_counts", counts.image_count.double().clamp(min=1).log())

    @property
    def extra_columns(self) -> int:
        return self.objective.extra_columns

    def make_classifier(self, in_features: int) -> nn.Linear:
        return self.objective.make_classifier(in_features)

    def init_classifier(self, layer: nn.Linear) -> None:
        self.objective.init_classifier(layer)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        try:
            return self.objective.loss(logits, labels)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """[R, K] logits -> [R, C] calibrated scores."""
        try:
            self.objective.check_columns(logits)
        except ValueError as err:
            raise ValueError(f"{self.name}: {err}") from None
        shift = (self.gamma * self.log_counts).to(logits.dtype)
        if not self.renormalize:
            return self.objective.scores(logits) * torch.exp(-shift)
        C = self.num_classes
        return self.objective.scores(torch.cat([logits[:, :C] - shift, logits[:, C:]], dim=1))


def norcal_softmax(num_classes: int, class_counts: CategoryCounts | None = None, gamma: float = 0.0,
                   renormalize: bool = True, loss_weight: float = 1.0) -> NorCal:
    """Softmax CE trained as usual, scored with NorCal: the method as published."""
    return NorCal(SoftmaxCE(num_classes, loss_weight=loss_weight), class_counts, gamma, renormalize)

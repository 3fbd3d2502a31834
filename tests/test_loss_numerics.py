"""Losses' numerics: non-finite options refused at construction, float16/bfloat16 logits computed in float32."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rog.losses.counts import CategoryCounts
from rog.losses import APLoss, GAPLoss, RSLoss
from rog.losses.objectives import OBJECTIVES, build_objective, objective_params

C = 1203
COUNTS = CategoryCounts(instance_count=torch.arange(1, C + 1) * 3, image_count=torch.arange(1, C + 1),
                        num_images=5000, frequency=tuple("rcf"[k % 3] for k in range(C)))


def options_of_type(kind: type) -> list[tuple[str, str]]:
    """(objective, option) for every option whose default is of `kind` (bool excluded from numbers)."""
    return [(name, key) for name in OBJECTIVES for key, default in objective_params(name).items()
            if type(default) is kind]


@pytest.mark.parametrize("name, option", options_of_type(float))
@pytest.mark.parametrize("bad", [math.nan, math.inf, "0.5"])
def test_objectives_refuse_non_finite_or_non_numeric_options(name, option, bad):
    # norcal's loss_weight is its softmax CE's, named by it
    with pytest.raises(ValueError, match=f"(norcal|{name}|softmax_ce): option {option} must be a finite number"):
        build_objective(name, 4, COUNTS_SMALL, **{option: bad})


@pytest.mark.parametrize("name, option", options_of_type(bool))
def test_objectives_refuse_a_bool_option_that_is_not_a_bool(name, option):
    with pytest.raises(ValueError, match=f"option {option} must be true or false, got 'no'"):
        build_objective(name, 4, COUNTS_SMALL, **{option: "no"})


COUNTS_SMALL = CategoryCounts(instance_count=torch.tensor([400, 60, 9, 2]), image_count=torch.tensor([200, 30, 5, 1]),
                              num_images=1000, frequency=("f", "c", "r", "r"))


def test_every_objective_still_builds_with_its_defaults():
    for name in OBJECTIVES:
        assert build_objective(name, 4, COUNTS_SMALL) is not None


@pytest.mark.parametrize("make, option", [
    (lambda v: GAPLoss(3, delta=v), "delta"), (lambda v: GAPLoss(3, gamma=v), "gamma"),
    (lambda v: GAPLoss(3, loss_weight=v), "loss_weight"), (lambda v: GAPLoss(3, rank_offset=v), "rank_offset"),
    (lambda v: APLoss(3, delta=v), "delta"), (lambda v: APLoss(3, loss_weight=v), "loss_weight"),
    (lambda v: RSLoss(3, delta=v), "delta"), (lambda v: RSLoss(3, loss_weight=v), "loss_weight"),
])
@pytest.mark.parametrize("bad", [math.nan, -math.inf, "abc"])
def test_ranking_losses_refuse_non_finite_options(make, option, bad):
    with pytest.raises(ValueError, match=f"option {option} must be a finite number"):
        make(bad)


@pytest.fixture(scope="module")
def batch():
    """2048 RoIs x 1203 classes: the summed BCE terms (~1e4) overflow float16 (max 65504) when summed there."""
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(2048, C + 2, generator=g)
    labels = torch.randint(0, C + 1, (2048,), generator=g)
    labels[::2] = C  # half background
    return logits, labels


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["sigmoid_ce", "eqlv2", "softmax_ce", "seesaw", "ecm"])
def test_objectives_compute_in_float32_whatever_the_logits_dtype(batch, dtype, name):
    logits, labels = batch
    objective = build_objective(name, C, COUNTS).eval()  # eval: statistics do not move between the calls
    k = objective.num_outputs
    low = logits[:, :k].to(dtype)
    if name == "sigmoid_ce" and dtype == torch.float16:  # the overflow the cast avoids
        plain = F.binary_cross_entropy_with_logits(low, F.one_hot(labels, k).to(dtype), reduction="none").sum()
        assert not torch.isfinite(plain)
    z = low.clone().requires_grad_()
    terms = objective.loss(z, labels)
    reference = objective.loss(low.float(), labels)  # the same rounded values, in float32
    for key, value in terms.items():
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert value.item() == pytest.approx(reference[key].item(), rel=1e-6)
    sum(terms.values()).backward()
    assert z.grad.dtype == dtype and bool(torch.isfinite(z.grad.float()).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gap_on_half_logits_is_finite_and_equals_its_float32_value(batch, dtype):
    logits, labels = batch
    low = logits[:, :C].to(dtype)
    gap, reference = GAPLoss(C), GAPLoss(C)
    z = low.clone().requires_grad_()
    value = gap(z, labels)
    assert torch.isfinite(value) and value.item() == pytest.approx(reference(low.float(), labels).item(), rel=1e-2)
    value.backward()
    assert bool(torch.isfinite(z.grad.float()).all()) and z.grad.abs().sum() > 0

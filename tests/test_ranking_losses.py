"""APLoss and RSLoss against brute-force readings of their algorithms."""
from __future__ import annotations

import pytest
import torch

from rog.losses import APLoss, RSLoss
from ranking_oracles import ap_oracle, rs_oracle
from test_gap_loss import make_batch


pytestmark = pytest.mark.usefixtures("pool_layout")


def run(loss, logits, *args):
    logits = logits.clone().requires_grad_(True)
    value = loss(logits, *args)
    value.backward()
    return value.detach(), logits.grad


@pytest.mark.parametrize("delta", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ap_loss_matches_oracle(delta, ties, dtype):
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    for seed in range(4):
        logits, labels = make_batch(12, 4, seed, ties=ties, dtype=dtype)
        value, grad = run(APLoss(4, delta=delta, loss_weight=0.6), logits, labels)
        expected_value, expected_grad = ap_oracle(logits, labels, 4, delta, 0.6)
        assert value.item() == pytest.approx(expected_value, rel=tol, abs=tol)
        torch.testing.assert_close(grad.double(), expected_grad, rtol=tol, atol=tol)


def test_ap_loss_interpolation_changes_the_gradient():
    # the low positive has a higher precision than the one above it, so interpolation applies
    logits = torch.tensor([[2.0, -9], [0.0, -9], [-0.5, -9], [-9, 1.0], [-9.0, -9]], dtype=torch.float64)
    labels = torch.tensor([2, 0, 2, 1, 2])
    value, grad = run(APLoss(2, delta=0.25), logits, labels)
    expected_value, expected_grad = ap_oracle(logits, labels, 2, 0.25, 1.0)
    assert value.item() == pytest.approx(expected_value)
    torch.testing.assert_close(grad, expected_grad)
    assert grad[:, :2].sum().item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("delta", [0.5, 1.0, 0.0])
@pytest.mark.parametrize("ties", [False, True])
def test_rs_loss_matches_oracle(delta, ties):
    for seed in range(4):
        logits, labels = make_batch(12, 4, seed, ties=ties, fg_fraction=0.6)
        g = torch.Generator().manual_seed(seed)
        ious = torch.rand(12, generator=g, dtype=torch.float64)
        if ties:
            ious = (ious * 4).round() / 4  # equal IoUs among positives
        value, grad = run(RSLoss(4, delta=delta, loss_weight=0.9), logits, labels, ious)
        expected_value, expected_grad = rs_oracle(logits, labels, ious, 4, delta, 0.9)
        assert value.item() == pytest.approx(expected_value, rel=1e-10, abs=1e-12)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_rs_single_positive_has_no_sorting_error():
    logits = torch.tensor([[0.0, 0.3], [0.2, -1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2])
    loss = RSLoss(2)
    value, grad = run(loss, logits, labels, torch.tensor([0.7, 0.0]))
    assert loss.last_sorting_error.item() == 0.0
    # negatives 0.3 (H = 0.8) and 0.2 (H = 0.7): FP = 1.5, rank = 0.5 + 1.5
    assert value.item() == pytest.approx(1.5 / 2.0)


@pytest.mark.parametrize("loss", [APLoss(3), RSLoss(3)])
def test_no_foreground_and_perfect_ranking_give_zero(loss):
    extra = (torch.zeros(4),) if isinstance(loss, RSLoss) else ()
    logits = torch.randn(4, 4, requires_grad=True)
    value = loss(logits, torch.full((4,), 3), *extra)
    value.backward()
    assert value.item() == 0.0 and (logits.grad == 0).all()
    logits = torch.full((4, 4), -4.0)
    logits[0, 1] = 3.0
    logits.requires_grad_(True)
    value = loss(logits, torch.tensor([1, 3, 3, 3]), *((torch.ones(4),) if extra else ()))
    value.backward()
    assert value.item() == 0.0 and (logits.grad == 0).all()


def test_bad_input_raises():
    logits, labels = make_batch(6, 3, 0)
    with pytest.raises(ValueError, match="APLoss: logits contain 1 non-finite"):
        APLoss(3)(logits.index_fill(0, torch.tensor([1]), 0).index_put((torch.tensor([0]), torch.tensor([0])),
                                                                   torch.tensor(float("nan"), dtype=logits.dtype)),
                  labels)
    with pytest.raises(ValueError, match="RSLoss: ious must be"):
        RSLoss(3)(logits, labels, torch.rand(5))
    with pytest.raises(ValueError, match=r"RSLoss: ious of positive RoIs must be finite and in \[0, 1\]"):
        RSLoss(3)(logits, torch.zeros(6, dtype=torch.long), torch.full((6,), 1.5))
    with pytest.raises(ValueError, match="labels must lie"):
        APLoss(3)(logits, labels + 5)

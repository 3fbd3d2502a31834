"""GAPLoss against a brute-force reading of Eqs. 5-11, in every mode, plus its edge cases."""
from __future__ import annotations

import itertools

import pytest
import torch

from rog.losses import GAPLoss
from rog.losses.counts import CategoryCounts
from rog.losses.gap import class_weights
from rog.losses.ramp import Grid
from ranking_oracles import gap_oracle, omega_oracle


pytestmark = pytest.mark.usefixtures("pool_layout")


def make_batch(rows: int, num_classes: int, seed: int, ties: bool = False, extra_columns: int = 1,
               fg_fraction: float = 0.4, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, num_classes + extra_columns, generator=g, dtype=torch.float64) * 1.5
    if ties:
        # scores on a 0.25 grid: many pairs tie exactly and many differences sit on the ramp's kinks
        logits = (logits * 4).round() / 4
    fg = torch.rand(rows, generator=g) < fg_fraction
    labels = torch.where(fg, torch.randint(0, num_classes, (rows,), generator=g), torch.tensor(num_classes))
    return logits.to(dtype), labels


def run_gap(loss: GAPLoss, logits: torch.Tensor, labels: torch.Tensor):
    logits = logits.clone().requires_grad_(True)
    value = loss(logits, labels)
    value.backward()
    return value.detach(), logits.grad


def assert_matches_oracle(logits, labels, num_classes, omega, tol=1e-10, **options):
    loss = GAPLoss(num_classes, weighting="none", **options)
    value, grad = run_gap(loss, logits, labels)
    expected_value, expected_grad = gap_oracle(
        logits, labels, num_classes, omega, options.get("delta", 0.5), options.get("exclude_fg", True),
        options.get("rank_offset", 0.5), options.get("loss_weight", 1.0))
    assert value.item() == pytest.approx(expected_value, rel=tol, abs=tol)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=tol, atol=tol)


MODES = list(itertools.product([True, False], [0.5, 1.0], [0.5, 0.25, 1.0, 0.0]))


@pytest.mark.parametrize("exclude_fg,rank_offset,delta", MODES)
@pytest.mark.parametrize("ties", [False, True])
def test_matches_oracle_in_every_mode(exclude_fg, rank_offset, delta, ties):
    num_classes = 4
    for seed in range(3):
        logits, labels = make_batch(14, num_classes, seed, ties=ties)
        assert_matches_oracle(logits, labels, num_classes, [1.0] * num_classes, delta=delta,
                              exclude_fg=exclude_fg, rank_offset=rank_offset, loss_weight=0.7)


@pytest.mark.parametrize("weighting", ["online", "dataset", "none"])
@pytest.mark.parametrize("exclude_fg", [True, False])
def test_weightings_match_oracle(weighting, exclude_fg):
    num_classes, gamma = 5, 0.8
    counts = torch.tensor([300.0, 40.0, 7.0, 1.0, 0.0])
    loss = GAPLoss(num_classes, gamma=gamma, loss_weight=0.3, weighting=weighting, exclude_fg=exclude_fg,
                   class_counts=CategoryCounts.from_instance_counts(counts) if weighting != "none" else None)
    expected_counts = counts.clone() if weighting != "none" else torch.zeros(num_classes)
    for step in range(4):  # successive batches: online counts accumulate before omega is taken
        logits, labels = make_batch(16, num_classes, 10 + step)
        if weighting == "online":
            expected_counts += torch.bincount(labels[labels < num_classes], minlength=num_classes).double()
        omega = omega_oracle(expected_counts.tolist(), gamma) if weighting != "none" else [1.0] * num_classes
        value, grad = run_gap(loss, logits, labels)
        expected_value, expected_grad = gap_oracle(logits, labels, num_classes, omega, 0.5, exclude_fg, 0.5, 0.3)
        assert value.item() == pytest.approx(expected_value, rel=1e-10)
        torch.testing.assert_close(grad.double(), expected_grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss.class_counts, expected_counts.double())


def test_class_weights_are_eq9():
    counts = torch.tensor([0.0, 1.0, 5.0, 1000.0])
    for gamma in (0.0, 0.5, 1.0, 3.0):
        torch.testing.assert_close(class_weights(counts, gamma), torch.tensor(omega_oracle(counts.tolist(), gamma),
                                                                               dtype=torch.float64))
    assert class_weights(counts, 1.0).sum().item() == pytest.approx(4.0)


def test_omega_does_not_underflow():
    weights = class_weights(torch.tensor([1e9, 1e9, 1.0]), gamma=50.0)
    assert torch.isfinite(weights).all() and weights[2].item() == pytest.approx(3.0)


def test_single_positive_and_several_classes():
    num_classes = 3
    logits = torch.tensor([[0.2, -1.0, 0.5, 0.0],
                           [0.9, 0.1, -0.3, 0.0],
                           [-0.4, 0.6, 0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 3, 3])  # one positive, two background RoIs
    assert_matches_oracle(logits, labels, num_classes, [1.0] * 3)
    labels = torch.tensor([0, 1, 2])  # three classes, one positive each
    for exclude_fg in (True, False):
        assert_matches_oracle(logits, labels, num_classes, [1.0] * 3, exclude_fg=exclude_fg)


def test_single_positive_by_hand():
    # C = 1, one positive at 0 and negatives at 0.25 (H = 0.75), -0.25 (H = 0.25) and 2 (H = 1), delta 0.5:
    # FP = 2, R = 0.5 + 2 = 2.5, L = 0.8; gradients -0.8 and H / 2.5 for the negatives.
    logits = torch.tensor([[0.0], [0.25], [-0.25], [2.0], [-3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 1, 1])
    value, grad = run_gap(GAPLoss(1, weighting="none"), logits, labels)
    assert value.item() == pytest.approx(0.8)
    torch.testing.assert_close(grad[:, 0], torch.tensor([-0.8, 0.3, 0.1, 0.4, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_extra_columns(dtype):
    num_classes = 4
    logits, labels = make_batch(20, num_classes, 3, extra_columns=2, dtype=dtype)
    loss = GAPLoss(num_classes, weighting="none")
    value, grad = run_gap(loss, logits, labels)
    assert value.dtype == dtype and grad.dtype == dtype
    expected_value, expected_grad = gap_oracle(logits, labels, num_classes, [1.0] * 4, 0.5, True, 0.5, 1.0)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert value.item() == pytest.approx(expected_value, rel=tol)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=tol, atol=tol)
    assert (grad[:, num_classes:] == 0).all()


def test_gradient_scales_with_upstream_gradient():
    logits, labels = make_batch(12, 3, 5)
    logits.requires_grad_(True)
    loss = GAPLoss(3, weighting="none")
    (3.0 * loss(logits, labels)).backward()
    _, expected = gap_oracle(logits, labels, 3, [1.0] * 3, 0.5, True, 0.5, 1.0)
    torch.testing.assert_close(logits.grad, 3.0 * expected)


def test_no_foreground_gives_zero():
    logits = torch.randn(6, 4, requires_grad=True)
    loss = GAPLoss(3)
    value = loss(logits, torch.full((6,), 3))
    value.backward()
    assert value.item() == 0.0 and (logits.grad == 0).all()
    assert (loss.class_counts == 0).all()


def test_positives_above_all_negatives_give_zero():
    logits = torch.full((6, 4), -5.0)
    labels = torch.tensor([0, 1, 2, 2, 3, 3])
    logits[torch.arange(4), labels[:4]] = torch.tensor([3.0, 2.0, 4.0, 1.0])
    logits.requires_grad_(True)
    value = GAPLoss(3)(logits, labels)
    value.backward()
    assert value.item() == 0.0 and (logits.grad == 0).all()


def test_balance_per_class():
    """Eq. 11 moves as much gradient up on positives as down on negatives, class by class."""
    logits, labels = make_batch(30, 5, 9)
    _, grad = run_gap(GAPLoss(5, weighting="none"), logits, labels)
    fg = labels < 5
    positive_total = grad[fg.nonzero().squeeze(1), labels[fg]].sum()
    assert positive_total.item() < 0
    assert grad[:, :5].sum().item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bad,message", [
    (lambda z, y: (z.index_fill(0, torch.tensor([2]), float("nan")), y), "non-finite"),
    (lambda z, y: (z.index_fill(1, torch.tensor([1]), float("inf")), y), "non-finite"),
    (lambda z, y: (z, y.index_fill(0, torch.tensor([0]), 7)), "labels must lie in 0..3"),
    (lambda z, y: (z, y.index_fill(0, torch.tensor([0]), -1)), "labels must lie in 0..3"),
    (lambda z, y: (z, y[:-1]), "labels must be"),
    (lambda z, y: (z[:, :2], y), "columns"),
    (lambda z, y: (z[0], y), "logits must be"),
    (lambda z, y: (z, y.float()), "integer"),
])
def test_bad_input_raises(bad, message):
    logits, labels = make_batch(8, 3, 0)
    logits, labels = bad(logits, labels)
    with pytest.raises(ValueError, match=message):
        GAPLoss(3)(logits, labels)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="weighting"):
        GAPLoss(3, weighting="batch")
    with pytest.raises(ValueError, match="class_counts"):
        GAPLoss(3, weighting="dataset")
    with pytest.raises(ValueError, match="cover 4 classes"):
        GAPLoss(3, weighting="dataset", class_counts=CategoryCounts.from_instance_counts(torch.ones(4)))
    with pytest.raises(ValueError, match="CategoryCounts"):  # the one count type, not a bare tensor
        GAPLoss(3, weighting="dataset", class_counts=torch.ones(3))
    with pytest.raises(ValueError, match="rank_offset"):
        GAPLoss(3, rank_offset=0.0)


def test_online_counts_live_in_state_dict():
    loss = GAPLoss(3)
    for seed in range(2):
        logits, labels = make_batch(10, 3, seed)
        loss(logits, labels)
    restored = GAPLoss(3)
    restored.load_state_dict(loss.state_dict())
    torch.testing.assert_close(restored.class_counts, loss.class_counts)
    assert loss.class_counts.sum() > 0
    loss.eval()  # no update outside training
    before = loss.class_counts.clone()
    loss(*make_batch(10, 3, 5))
    torch.testing.assert_close(loss.class_counts, before)


def test_figure3_rare_positive_ranked_below_other_objects_negatives():
    """Paper Figure 3: every object is classified right, yet the rare positive ranks below negatives.

    Classes: 0 person (frequent), 1 car, 2 soccer ball (rare). Each RoI's own class has its highest
    score, so per-object cross-entropy is low; but the soccer ball's 0.15 ranks below the 0.30 that the
    person RoI gives 'soccer'. GAP must be positive, raise the soccer positive and lower exactly the
    negatives above it or within delta below it.
    """
    probabilities = torch.tensor([[0.90, 0.05, 0.30],
                                  [0.10, 0.85, 0.05],
                                  [0.02, 0.03, 0.15]], dtype=torch.float64)
    logits = torch.logit(probabilities)
    labels = torch.tensor([0, 1, 2])
    assert (logits.argmax(1) == labels).all()
    ce = torch.nn.functional.cross_entropy(logits, labels).item()
    delta = 0.5
    value, grad = run_gap(GAPLoss(3, delta=delta, weighting="none"), logits, labels)
    ce_perfect_ranking = torch.nn.functional.cross_entropy(logits.clamp(max=logits[2, 2]), labels).item()
    assert ce < 1.0 and ce_perfect_ranking < 1.0
    assert value.item() > 0.1
    rare = logits[2, 2].item()
    assert grad[2, 2] < 0  # descent raises the rare positive
    negatives = torch.ones(3, 3, dtype=torch.bool)
    negatives[torch.arange(3), labels] = False
    pushed_down = (grad > 0) & negatives
    expected = negatives & (logits > rare - delta)
    assert pushed_down.equal(expected) and expected[0, 2]  # the person RoI's 'soccer' score is among them
    assert (grad[negatives & ~expected] == 0).all()
    assert grad[0, 0] == 0 and grad[1, 1] == 0  # frequent positives already rank first


@pytest.mark.parametrize("exclude_fg,rank_offset,delta", [(True, 0.5, 0.5), (False, 1.0, 0.5), (True, 1.0, 0.0),
                                                          (False, 0.5, 0.0), (True, 0.5, 0.25)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_oracle_on_the_grid_in_blocks(monkeypatch, exclude_fg, rank_offset, delta, dtype):
    """Big enough for the bucketing grid, cut into blocks of two rows, scores tied with the kinks."""
    monkeypatch.setattr("rog.losses.ramp.BLOCK", 64)
    num_classes = 24
    logits, labels = make_batch(48, num_classes, 7, ties=True, extra_columns=2, dtype=dtype)
    fg = labels < num_classes
    centres = logits[fg.nonzero().squeeze(1), labels[fg]].double()
    kinks = torch.sort(torch.cat([centres - delta, centres + delta])).values
    assert Grid(kinks, dtype, 48 * num_classes).table is not None
    loss = GAPLoss(num_classes, weighting="none", delta=delta, exclude_fg=exclude_fg, rank_offset=rank_offset)
    value, grad = run_gap(loss, logits, labels)
    expected_value, expected_grad = gap_oracle(logits, labels, num_classes, [1.0] * num_classes, delta, exclude_fg,
                                               rank_offset, 1.0)
    tol = 1e-10 if dtype == torch.float64 else 1e-6
    assert value.item() == pytest.approx(expected_value, rel=tol)
    torch.testing.assert_close(grad.double(), expected_grad, rtol=tol, atol=tol * expected_grad.abs().max().item())


def test_second_backward_through_the_same_graph_gives_the_same_gradient():
    # the first backward writes the gradient over the buckets it kept; a second one bucketizes again
    logits, labels = make_batch(40, 6, 4, dtype=torch.float32)
    logits.requires_grad_(True)
    value = GAPLoss(6, weighting="none")(logits, labels)
    value.backward(retain_graph=True)
    first = logits.grad.clone()
    logits.grad = None
    (2.0 * value).backward()
    torch.testing.assert_close(logits.grad, 2.0 * first)


def test_value_without_gradient_and_in_place_change_refused():
    logits, labels = make_batch(30, 5, 6)
    loss = GAPLoss(5, weighting="none")
    with torch.no_grad():
        plain = loss(logits, labels)
    z = logits.clone().requires_grad_(True)
    value = loss(z, labels)
    assert value.item() == plain.item()
    with torch.no_grad():
        z.add_(1.0)  # the dense pool reads the logits again in backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        value.backward()

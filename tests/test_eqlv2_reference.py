"""EQLv2 against its paper (Tan et al., CVPR 2021) and reference code (tztztztztz/eqlv2), in the detector.

Why: on LT-Glyphs EQLv2 is no better than sigmoid CE at 1x, while on LVIS it is far above CE. These
tests check the answer "the implementation is not the cause": the weighting function's known values at
the paper's defaults (gamma 12, mu 0.8, alpha 4), the gradient each logit receives (the paper's
reweighting of the positive and negative BCE gradients, with statistics from the batches before), and
the wiring inside the detector: C + 1 outputs with the objectness column last, the classifier bias at
prior 0.001 on every column (the reference head's `bias_init_with_prob(0.001)`), background RoIs
targeted on that column, and the statistics gathered from the RoIs the detector samples.
"""
from __future__ import annotations

import math

import pytest
import torch

from rog.config import resolve_run
from rog.losses.objectives import build_objective
from rog.models.builder import build_detector, classifier

C = 4


def paper_weights(ratio: list[float], gamma=12.0, mu=0.8, alpha=4.0) -> tuple[list[float], list[float]]:
    """(r, q) of the paper: q_j = 1 / (1 + exp(-gamma (g_j - mu))), r_j = 1 + alpha (1 - q_j)."""
    q = [1 / (1 + math.exp(-gamma * (g - mu))) for g in ratio]
    return [1 + alpha * (1 - x) for x in q], q


def test_weights_at_the_papers_defaults_take_their_known_values():
    objective = build_objective("eqlv2", C)
    assert (objective.gamma, objective.mu, objective.alpha) == (12.0, 0.8, 4.0)
    objective.pos_neg.copy_(torch.tensor([0.0, 0.8, 100.0, 0.4], dtype=torch.float64))
    r, q = objective.class_weights()
    # g = mu: q = 1/2, r = 3; g = 0 (no positive gradient yet): negatives nearly off, positives x ~5
    assert q[1].item() == pytest.approx(0.5) and r[1].item() == pytest.approx(3.0)
    assert q[0].item() == pytest.approx(1 / (1 + math.exp(9.6))) and r[0].item() == pytest.approx(5 - 4 / (1 + math.exp(9.6)))
    assert q[2].item() == 1.0 and r[2].item() == 1.0         # the starting ratio 100: plain BCE
    assert q[3].item() == pytest.approx(1 / (1 + math.exp(4.8)))
    assert q[C].item() == 1.0 and r[C].item() == 1.0         # the objectness column is never reweighted


def test_gradient_is_the_papers_reweighting_with_statistics_from_earlier_batches():
    """dL/dz_ij = (r_j t_ij (sigmoid - 1) + q_j (1 - t_ij) sigmoid) / R for j < C, plain BCE for the
    objectness column; g_j = sum of r_j t (1 - sigmoid) over sum of q_j (1 - t) sigmoid, accumulated over
    the batches before (each batch's own weights), starting at 100."""
    torch.manual_seed(0)
    objective = build_objective("eqlv2", C)
    pos, neg, ratio = [0.0] * C, [0.0] * C, [100.0] * C
    labels = torch.tensor([0, 0, 1, C, C, C, 2, C])   # class 3 never positive: its negatives fade out
    for step in range(4):
        z = (torch.randn(len(labels), C + 1, dtype=torch.float64) * 2).requires_grad_()
        r, q = paper_weights(ratio)
        (grad,) = torch.autograd.grad(sum(objective.loss(z, labels).values()), z)
        p = torch.sigmoid(z.detach())
        expected = torch.empty_like(p)
        for i, y in enumerate(labels.tolist()):
            for j in range(C + 1):
                t = float(y == j)
                if j == C:
                    expected[i, j] = p[i, j] - t
                else:
                    expected[i, j] = r[j] * t * (p[i, j] - 1) + q[j] * (1 - t) * p[i, j]
                    pos[j] += r[j] * t * (1 - p[i, j].item())
                    neg[j] += q[j] * (1 - t) * p[i, j].item()
        torch.testing.assert_close(grad, expected / len(labels))
        ratio = [pos[j] / (neg[j] + 1e-10) for j in range(C)]
        torch.testing.assert_close(objective.pos_neg, torch.tensor(ratio, dtype=torch.float64))
    assert ratio[3] == 0.0 and objective.class_weights()[1][3].item() < 1e-4


def test_in_the_detector_background_is_the_last_column_and_statistics_come_from_sampled_rois():
    fast = ["model.rpn.post_nms_top_n_train=64", "model.roi.batch_size_per_image=32", "model.objective.name=eqlv2"]
    torch.manual_seed(0)
    model = build_detector(resolve_run("params.yaml", "smoke", overrides=fast)["model"], C)
    layer = classifier(model)
    assert layer.out_features == C + 1
    torch.testing.assert_close(layer.bias.detach(), torch.full((C + 1,), -math.log(999.0)))  # prior 0.001

    seen = []
    objective = model.roi_heads.objective
    collect = objective.collect_grad

    def spy(logits, targets, weights):
        seen.append((logits.clone(), targets.clone(), weights.clone()))
        collect(logits, targets, weights)

    objective.collect_grad = spy
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 128, 128, generator=g) for _ in range(2)]
    boxes = torch.tensor([[10.0, 10.0, 50.0, 60.0], [70.0, 20.0, 110.0, 70.0]])
    targets = [{"boxes": boxes, "labels": torch.tensor([0, 2]), "masks": torch.zeros(2, 128, 128, dtype=torch.uint8)}
               for _ in images]
    for t in targets:
        for k, (x1, y1, x2, y2) in enumerate(t["boxes"].long().tolist()):
            t["masks"][k, y1:y2, x1:x2] = 1
    model.train()
    model(images, targets)
    (logits, onehot, weights), = seen
    assert logits.shape[1] == C + 1 and torch.equal(onehot.sum(1), torch.ones(len(onehot)))
    background = onehot[:, C] == 1
    assert background.sum() > 0 and (~background).sum() > 0
    assert set(onehot[~background, :C].argmax(1).tolist()) == {0, 2}   # the ground truth's classes only
    assert torch.equal(weights, torch.ones_like(weights))                # first step: plain BCE
    p = torch.sigmoid(logits.double())
    t = onehot.double()
    torch.testing.assert_close(objective.pos_grad, (t * (1 - p)).sum(0)[:C])
    torch.testing.assert_close(objective.neg_grad, ((1 - t) * p).sum(0)[:C])
    assert objective.pos_grad[1] == 0 and objective.pos_grad[3] == 0    # never positive in this batch

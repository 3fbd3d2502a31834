"""The detector's global-level ranking term can be GAP, AP loss or RS loss (Table 2, Figure 4)."""
from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

from rog.losses import APLoss, GAPLoss, RSLoss
from rog.models.builder import build_detector, build_gap, classifier
from rog.models.roi_heads import predicted_box_ious
from test_models import model_params, random_batch


def test_build_gap_picks_the_ranking_loss():
    base = {"enabled": True, "loss_weight": 0.3, "delta": 1.0, "gamma": 1.0, "weighting": "online",
            "exclude_fg": True, "rank_offset": 0.5, "sync_counts": True}
    assert isinstance(build_gap(base, 4), GAPLoss)
    ap = build_gap(dict(base, loss="ap_loss"), 4)
    assert isinstance(ap, APLoss) and ap.delta == 1.0 and ap.loss_weight == 0.3
    assert isinstance(build_gap(dict(base, loss="rs_loss"), 4), RSLoss)
    assert build_gap(dict(base, enabled=False, loss="rs_loss"), 4) is None
    with pytest.raises(ValueError, match="unknown ranking loss 'focal'"):
        build_gap(dict(base, loss="focal"), 4)


def test_predicted_box_ious_equal_pairwise_iou():
    coder = det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0))
    g = torch.Generator().manual_seed(0)
    num_classes = 3
    proposals = [torch.tensor([[10.0, 10, 40, 50], [0, 0, 20, 20], [30, 5, 60, 25]]),
                 torch.tensor([[5.0, 5, 25, 35], [50, 50, 90, 80]])]
    gt = [torch.tensor([[12.0, 8, 42, 48], [28, 4, 58, 30]]), torch.tensor([[50.0, 45, 85, 80]])]
    matched = [torch.tensor([0, -1, 1]), torch.tensor([-1, 0])]
    labels = torch.tensor([2, 3, 0, 3, 1])  # 3 = background
    deltas = torch.randn(5, num_classes * 4, generator=g) * 0.1
    ious = predicted_box_ious(coder, deltas, labels, proposals, matched, gt, num_classes)
    flat_props, flat_gt = torch.cat(proposals), [gt[0][0], None, gt[0][1], None, gt[1][0]]
    for r in range(5):
        if labels[r] == num_classes:
            assert ious[r] == 0
            continue
        box = coder.decode_single(deltas[r:r + 1, labels[r] * 4:labels[r] * 4 + 4], flat_props[r:r + 1])
        torch.testing.assert_close(ious[r], box_iou(box, flat_gt[r][None])[0, 0])


@pytest.mark.parametrize("loss", ["ap_loss", "rs_loss"])
def test_detector_trains_with_a_category_agnostic_ranking_loss_alone(loss):
    torch.manual_seed(0)
    c = 5
    model = build_detector(model_params("model.objective.name=none", "model.gap.enabled=true",
                                        f"model.gap.loss={loss}"), c)
    assert isinstance(model.roi_heads.gap, APLoss if loss == "ap_loss" else RSLoss)
    images, targets = random_batch(num_classes=c)
    model.train()
    losses = model(images, targets)
    assert "loss_cls" not in losses and losses["loss_gap"] > 0
    sum(losses.values()).backward()
    assert classifier(model).weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert all(len(det["boxes"]) <= 20 for det in model(images))

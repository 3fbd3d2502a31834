"""The detector: inference cut (threshold, class-wise NMS, top K), label conventions, losses, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rog.config import resolve_run
from rog.models.builder import build_detector, classifier
from rog.models.roi_heads import box_regression_loss, objective_labels, select_detections


def model_params(*overrides: str) -> dict:
    fast = ["model.rpn.post_nms_top_n_train=64", "model.rpn.post_nms_top_n_test=32",
            "model.roi.batch_size_per_image=32", "model.test.detections_per_img=20"]
    return resolve_run("params.yaml", "smoke", overrides=fast + list(overrides))["model"]


def random_batch(num_images: int = 2, num_classes: int = 5, size: int = 128, seed: int = 0):
    """Images [3, size, size] and targets with 3 boxes each (labels 0..C-1, box masks)."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(num_images):
        xy = torch.randint(0, size - 48, (3, 2), generator=g).float()
        wh = torch.randint(16, 40, (3, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(3, size, size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        images.append(torch.rand(3, size, size, generator=g))
        targets.append({"boxes": boxes, "labels": torch.randint(0, num_classes, (3,), generator=g),
                        "masks": masks})
    return images, targets


# ---- inference cut ----------------------------------------------------------------------------------
def test_select_detections_keeps_the_k_best_sorted():
    g = torch.Generator().manual_seed(0)
    n, c = 40, 6
    xy = torch.rand(n, 1, 2, generator=g) * 1000  # spread out: no two boxes overlap much
    boxes = torch.cat([xy, xy + 5], -1).expand(n, c, 4).clone()
    boxes += torch.arange(c).view(1, c, 1) * 2000  # each class in its own region: NMS removes nothing
    scores = torch.rand(n, c, generator=g)
    out_boxes, out_scores, out_labels = select_detections(boxes, scores, 0.0, 0.5, 17)
    assert len(out_scores) == 17
    assert torch.equal(out_scores, scores.flatten().sort(descending=True).values[:17])
    flat = scores.flatten().argsort(descending=True)[:17]
    assert torch.equal(out_labels, flat % c)
    assert torch.equal(out_boxes, boxes.reshape(-1, 4)[flat])


def test_select_detections_threshold_and_classwise_nms():
    box = torch.tensor([0.0, 0.0, 10.0, 10.0])
    near = torch.tensor([0.0, 0.0, 10.0, 11.0])  # IoU 0.91 with box
    far = torch.tensor([50.0, 50.0, 60.0, 60.0])
    boxes = torch.stack([torch.stack([box, box]), torch.stack([near, near]), torch.stack([far, far])])  # [3, 2, 4]
    scores = torch.tensor([[0.9, 0.8], [0.7, 1e-4], [5e-5, 0.3]])
    b, s, labels = select_detections(boxes, scores, 1e-4, 0.5, 300)
    # class 0: box (0.9) suppresses near (0.7); far (5e-5) is under the threshold
    # class 1: box (0.8) kept, near (1e-4) not above the threshold, far (0.3) kept
    assert s.tolist() == pytest.approx([0.9, 0.8, 0.3])
    assert labels.tolist() == [0, 1, 1]
    assert torch.equal(b[2], far)
    # below the NMS threshold both survive
    b, s, labels = select_detections(boxes, scores, 1e-4, 0.95, 300)
    assert s.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.3])


def test_label_conventions_and_box_loss():
    c = 4
    assert objective_labels(torch.tensor([0, 1, 4, 2]), c).tolist() == [4, 0, 3, 1]
    deltas = torch.arange(3 * c * 4, dtype=torch.float32).reshape(3, c * 4)
    labels = torch.tensor([2, c, 0])  # one background RoI
    targets = torch.zeros(3, 4)
    expected = (deltas[0, 8:12].abs().sum() + deltas[2, 0:4].abs().sum()) / 3
    assert box_regression_loss(deltas, labels, targets, c).item() == pytest.approx(expected.item())


# ---- the detector -----------------------------------------------------------------------------------
class LabelSpy(nn.Module):
    """Records the labels the ranking term receives, then returns a zero loss."""

    needs_ious = False

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, logits, labels):
        self.seen.append((logits.shape, labels.clone()))
        return logits.sum() * 0


def test_training_losses_background_last_and_inference_output():
    torch.manual_seed(0)
    c = 5
    model = build_detector(model_params("model.ranking.name=gap"), c)
    images, targets = random_batch(num_classes=c)
    model.train()
    losses = model(images, targets)
    assert {"loss_cls", "loss_gap", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert classifier(model).weight.grad is not None

    spy = LabelSpy()
    model.roi_heads.ranking = spy
    model(images, targets)
    shape, labels = spy.seen[0]
    assert shape[1] == c + 1  # sigmoid CE: C classes + background column
    assert labels.max() == c and labels.min() >= 0  # background is C, foreground 0..C-1
    fg = labels[labels < c]
    gt = torch.cat([t["labels"] for t in targets])
    assert set(fg.tolist()) <= set(gt.tolist())  # the GT boxes (added as proposals) keep their labels
    assert set(gt.tolist()) <= set(fg.tolist())

    model.eval()
    with torch.no_grad():
        out = model(images)
    for det in out:
        assert len(det["boxes"]) <= 20
        assert det["labels"].min() >= 0 and det["labels"].max() < c
        assert torch.all(det["scores"][:-1] >= det["scores"][1:])
        assert det["masks"].shape == (len(det["boxes"]), 1, 128, 128)


def test_mask_budget_pastes_masks_for_the_top_detections_only():
    """model.test.masks_per_img: the same boxes, and the masks of the first ones equal to those of the
    model without a budget (a Table 3 box budget K without K masks per image)."""
    torch.manual_seed(0)
    model = build_detector(model_params("model.test.score_thresh=0.0", "model.test.masks_per_img=null"), 4).eval()
    images = random_batch(2, 4)[0]
    with torch.no_grad():
        full = model(images)
        model.roi_heads.masks_per_img = 3
        cut = model(images)
    for a, b in zip(full, cut):
        assert len(a["boxes"]) > 3  # the budget binds
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
        assert b["masks"].shape == (3, 1, 128, 128)
        assert torch.allclose(a["masks"][:3], b["masks"], atol=1e-6)
    assert build_detector(model_params("model.test.masks_per_img=7"), 4).roi_heads.masks_per_img == 7


def test_faster_rcnn_has_no_mask_branch():
    model = build_detector(model_params("model.arch=faster_rcnn"), 3).eval()
    with torch.no_grad():
        out = model(random_batch(1, 3)[0])
    assert "masks" not in out[0]


@pytest.mark.parametrize("stride", [4, 2])
def test_fine_mask_level_feeds_the_mask_branch_only(stride):
    """mask_features strideS: the mask RoI pool reads the stride-S map, the RPN and box head never do."""
    model = build_detector(model_params(f"model.roi.mask_features=stride{stride}", "model.roi.mask_in_channels=16"), 5)
    images, targets = random_batch(2, 5)
    features = model.backbone(torch.stack(images))
    assert features["mask"].shape == (2, 16, 128 // stride, 128 // stride) and features["0"].shape[-1] == 16
    assert model.roi_heads.mask_roi_pool.featmap_names == ["mask"]
    assert "mask" not in model.rpn.levels and "mask" not in model.roi_heads.box_roi_pool.featmap_names
    losses = model.train()(images, targets)
    sum(losses.values()).backward()
    assert model.backbone.mask_out.weight.grad.abs().sum() > 0  # trained through the mask loss
    assert model.backbone.fpn.layer_blocks[0][0].weight.grad is not None
    plain = build_detector(model_params(), 5)
    assert {k for k in model.state_dict() if not k.startswith("backbone.mask_")} - set(plain.state_dict()) == set()


@pytest.mark.parametrize("override, message", [
    ("model.roi.mask_features=stride8", "unknown 'stride8'"),
    ("model.objective.name=nonsense", "unknown objective 'nonsense'"),
    ("model.backbone.name=vgg", "unknown backbone 'vgg'"),
    ("model.arch=retinanet", "unknown model arch 'retinanet'"),
])
def test_unknown_names_are_clear_errors(override, message):
    # the schema refuses these when params resolve (tests/test_schema.py); the builder refuses them too
    params, (key, value) = model_params(), override.split("=")
    *sections, name = key.split(".")[1:]
    node = params
    for part in sections:
        node = node[part]
    node[name] = value
    with pytest.raises(ValueError, match=message):
        build_detector(params, 3)


# ---- fast pieces equal to torchvision's ----------------------------------------------------------------
@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
def test_separable_roi_align_equals_torchvision(sampling_ratio):
    from torchvision.ops import roi_align

    from rog.models.roi_align import separable_roi_align
    g = torch.Generator().manual_seed(sampling_ratio)
    features = torch.randn(3, 5, 12, 15, dtype=torch.float64, generator=g, requires_grad=True)
    xy = torch.rand(40, 2, generator=g, dtype=torch.float64) * 140 - 20  # some partly or fully outside
    wh = torch.rand(40, 2, generator=g, dtype=torch.float64) * 50 + 0.2  # some under one feature cell
    batch = torch.randint(0, 3, (40, 1), generator=g).double()  # not grouped by image
    rois = torch.cat([batch, xy, xy + wh], 1)
    rois[0, 1:] = torch.tensor([0.0, 0.0, 119.0, 95.0])  # the whole map at scale 1/8
    weights = torch.randn(40, 5, 7, 7, dtype=torch.float64, generator=g)
    ours = separable_roi_align(features, rois, (7, 7), 0.125, sampling_ratio)
    ref = roi_align(features, rois, (7, 7), 0.125, sampling_ratio, aligned=False)
    assert torch.allclose(ours, ref, atol=1e-12)
    grad_ours, = torch.autograd.grad((ours * weights).sum(), features)
    grad_ref, = torch.autograd.grad((ref * weights).sum(), features)
    assert torch.allclose(grad_ours, grad_ref, atol=1e-12)


def test_class_mask_logits_equals_the_full_predictor():
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    from rog.models.roi_heads import class_mask_logits
    torch.manual_seed(0)
    predictor = MaskRCNNPredictor(8, 8, 6)
    features = torch.randn(5, 8, 14, 14)
    labels = torch.tensor([0, 5, 2, 2, 3])
    full = predictor(features)[torch.arange(5), labels]
    assert torch.allclose(class_mask_logits(predictor, features, labels), full, atol=1e-5)

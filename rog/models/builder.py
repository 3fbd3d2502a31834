"""Build a Mask R-CNN or Faster R-CNN from the `model` section of params.yaml.

`build_detector(model_params, num_classes, class_counts)` assembles torchvision's GeneralizedRCNN from
its parts in one place: backbone, RPN, `ObjectiveRoIHeads` (the objective, the ranking term, the mask
branch) and the transform; what changes how a built model runs (NorCal scores, boxes only, gradient
diagnostics) is a build option, so no caller patches a built model. State-dict keys are torchvision's
MaskRCNN / FasterRCNN ones. Targets: boxes [N, 4] xyxy float, labels [N]
in 0..C-1, masks [N, H, W] uint8 (Mask R-CNN); detections use the same labels 0..C-1.
"""
from __future__ import annotations

import hashlib
import json

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign

from rog.models import pretrained
from rog.models.backbones import MASK_LEVEL, build_backbone
from rog.models.masks import BatchedPasteTransform
from rog.models.roi_align import SeparableMultiScaleRoIAlign
from rog.models.roi_heads import ObjectivePredictor, ObjectiveRoIHeads

ARCHS = ("mask_rcnn", "faster_rcnn")


class ReducedRoIPool(nn.Module):
    """A 1x1 conv (in -> out channels, shared by the levels) on the pyramid, then RoIAlign.

    The mask branch pools each of its K detections per image; pooling `out` instead of `in` channels
    divides that memory traffic and the first mask conv by in/out. Linear, so it only factorises the
    first mask conv; on the pyramid maps it costs next to nothing.
    """

    def __init__(self, pool: nn.Module, in_channels: int, out_channels: int):
        super().__init__()
        self.pool = pool
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, features: dict, boxes: list, image_shapes: list):
        reduced = {k: self.reduce(features[k]) for k in self.pool.featmap_names}
        return self.pool(reduced, boxes, image_shapes)


class PyramidRPN(RegionProposalNetwork):
    """torchvision's RPN on the named pyramid levels only (the backbone may return maps for other heads)."""

    def __init__(self, levels: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.levels = list(levels)

    def forward(self, images, features, targets=None):
        return super().forward(images, {k: features[k] for k in self.levels}, targets)


MASK_FEATURES = ("fpn", "stride4", "stride2")


def build_objective_module(params: dict, num_classes: int, class_counts=None) -> nn.Module:
    """The `objective` mapping {name, params} -> an objective of `rog.losses.objectives`."""
    from rog.losses.objectives import build_objective

    return build_objective(params["name"], num_classes, class_counts=class_counts, **(params.get("params") or {}))


def build_ranking_module(params: dict, num_classes: int, class_counts=None) -> nn.Module | None:
    """The `ranking` mapping {name, weight, params} -> a term of `rog.losses.ranking_terms`, or None
    (name null: no ranking term)."""
    if params.get("name") is None:
        return None
    from rog.losses.ranking_terms import build_ranking

    return build_ranking(params["name"], num_classes, params.get("weight", 1.0), class_counts,
                         **(params.get("params") or {}))


def norcal_shift(class_counts, gamma: float | None, num_classes: int) -> torch.Tensor | None:
    """NorCal's shift of the C foreground logits, gamma log n_c (n_c: training image counts, at least 1),
    as rog.losses.calibration.NorCal computes it; None without gamma."""
    if gamma is None:
        return None
    if class_counts is None or getattr(class_counts, "image_count", None) is None:
        raise ValueError("evaluate.norcal_gamma: NorCal needs the training set's image counts per class")
    counts = torch.as_tensor(class_counts.image_count, dtype=torch.float64)
    if counts.numel() != num_classes:
        raise ValueError(f"evaluate.norcal_gamma: {counts.numel()} image counts for {num_classes} classes")
    return float(gamma) * counts.clamp(min=1).log()


def model_signature(model_params: dict, num_classes: int) -> dict:
    """What must match between a checkpoint and the model it is loaded into: architecture, classes and the
    pretrained detector's digest (None from scratch)."""
    spec = {"arch": model_params["arch"], "backbone": model_params["backbone"],
            "objective": model_params["objective"]["name"], "num_classes": int(num_classes),
            "mask": model_params["arch"] == "mask_rcnn"}
    weights = model_params.get("weights")
    spec["weights_sha256"] = pretrained.weights_digest(weights) if weights else None  # the pretrained start
    hashed = dict(model_params, weights_sha256=spec["weights_sha256"]) if weights else model_params
    spec["hash"] = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return spec


def build_detector(model_params: dict, num_classes: int, class_counts=None,
                   objective: nn.Module | None = None, *, norcal_gamma: float | None = None,
                   masks: bool = True, grad_stats=None) -> nn.Module:
    """model_params: the resolved `model` section; class_counts: CategoryCounts of the training split.

    `objective` replaces the one named in params (tests use it to inject a small objective).
    Options that change how a built model runs, never its state dict (a checkpoint loads either way):
    norcal_gamma: scores calibrated with NorCal(gamma) from class_counts' image counts
    (rog.losses.calibration; renormalised); masks=False: boxes only (the mask branch is not run);
    grad_stats: a rog.engine.diagnostics.GradientStats that records the classification gradients.
    """
    arch = model_params["arch"]
    if arch not in ARCHS:
        raise ValueError(f"unknown model arch '{arch}'; valid: {', '.join(ARCHS)}")
    if objective is None:
        objective = build_objective_module(model_params["objective"], num_classes, class_counts)
    ranking = build_ranking_module(model_params.get("ranking") or {}, num_classes, class_counts)
    roi = model_params["roi"]
    mask_features = roi.get("mask_features", "fpn")
    if mask_features not in MASK_FEATURES:
        raise ValueError(f"model.roi.mask_features: unknown '{mask_features}'; valid: {', '.join(MASK_FEATURES)}")
    with_mask = arch == "mask_rcnn"
    fine = with_mask and mask_features != "fpn"  # the mask branch reads the backbone's fine map
    backbone = build_backbone(model_params["backbone"], (roi.get("mask_in_channels") or 32) if fine else None,
                              int(mask_features[len("stride"):]) if fine else 4)
    channels = backbone.out_channels
    levels = [str(i) for i in range(len(backbone.strides) - 1)]  # RoI pooling on all but the max-pool level
    if len(model_params["anchor_sizes"]) != len(backbone.strides):
        raise ValueError(f"model.anchor_sizes: {len(model_params['anchor_sizes'])} sizes for "
                         f"{len(backbone.strides)} pyramid levels")
    anchors = AnchorGenerator(sizes=tuple((int(s),) for s in model_params["anchor_sizes"]),
                              aspect_ratios=(tuple(float(a) for a in model_params["aspect_ratios"]),)
                              * len(model_params["anchor_sizes"]))
    pool = SeparableMultiScaleRoIAlign if roi.get("separable_align", False) else MultiScaleRoIAlign
    # the parts with weights are made in this order (it fixes their initialisation for a given seed)
    box_head = TwoMLPHead(channels * 49, roi["representation_size"])
    mask_pool = mask_head = mask_predictor = None
    if with_mask:
        mask_channels = roi.get("mask_in_channels") or channels
        mask_pool = pool([MASK_LEVEL] if fine else levels, output_size=14, sampling_ratio=roi["sampling_ratio"])
        mask_head = MaskRCNNHeads(mask_channels, [roi["mask_head_channels"]] * roi["mask_head_layers"], 1)
        mask_predictor = MaskRCNNPredictor(roi["mask_head_channels"], roi["mask_head_channels"], num_classes)
    rpn_head = RPNHead(channels, anchors.num_anchors_per_location()[0])
    if with_mask and not fine and mask_channels != channels:
        mask_pool = ReducedRoIPool(mask_pool, channels, mask_channels)
    predictor = ObjectivePredictor(objective.make_classifier(roi["representation_size"]),
                                   roi["representation_size"], num_classes)

    rpn = model_params["rpn"]
    rpn_args = (anchors, rpn_head, 0.7, 0.3, rpn["batch_size_per_image"], 0.5,
                {"training": rpn["pre_nms_top_n_train"], "testing": rpn["pre_nms_top_n_test"]},
                {"training": rpn["post_nms_top_n_train"], "testing": rpn["post_nms_top_n_test"]}, 0.7)
    proposals = PyramidRPN(levels + ["pool"], *rpn_args) if fine else RegionProposalNetwork(*rpn_args)
    test = model_params["test"]
    heads = ObjectiveRoIHeads(
        objective=objective, ranking=ranking, num_classes=num_classes, box_loss=roi.get("box_loss", "l1"),
        box_roi_pool=pool(levels, output_size=7, sampling_ratio=roi["sampling_ratio"]), box_head=box_head,
        box_predictor=predictor, fg_iou_thresh=0.5, bg_iou_thresh=0.5,
        batch_size_per_image=roi["batch_size_per_image"], positive_fraction=roi["positive_fraction"],
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0), score_thresh=test["score_thresh"], nms_thresh=test["nms_thresh"],
        detections_per_img=test["detections_per_img"], masks_per_img=test.get("masks_per_img"),
        mask_roi_pool=mask_pool, mask_head=mask_head, mask_predictor=mask_predictor,
        score_shift=norcal_shift(class_counts, norcal_gamma, num_classes), masks=masks, grad_stats=grad_stats,
    )
    transform = BatchedPasteTransform(int(model_params["min_size"]), int(model_params["max_size"]),
                                      list(model_params["image_mean"]), list(model_params["image_std"]))
    model = GeneralizedRCNN(backbone, proposals, heads, transform)
    if model_params.get("weights"):  # the pretrained start (a checkpoint loaded later overwrites it)
        pretrained.transfer(model, model_params["weights"], num_classes)
    model.signature = model_signature(model_params, num_classes)
    return model


def classifier(model: nn.Module) -> nn.Linear:
    """The classification layer (weight [K, D]) of a detector built here, DDP-wrapped or not."""
    model = getattr(model, "module", model)
    return model.roi_heads.box_predictor.cls_score

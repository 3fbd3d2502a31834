"""The RoI box head with a pluggable classification objective, a ranking term on top, and its own inference.

Label conventions, mapped once here:
- the detector's targets and detections use contiguous foreground labels 0..C-1 (as `LVISDataset`);
- torchvision's proposal matching uses 0 = background, 1..C foreground (targets are shifted by +1
  before `select_training_samples`);
- objectives and ranking terms take labels 0..C with C = background (mmdet/detectron2's convention), converted
  by `objective_labels` right after sampling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from rog.models.masks import mask_targets


def objective_labels(matched: torch.Tensor, num_classes: int) -> torch.Tensor:
    """torchvision labels [R] (0 = background, 1..C) -> objective labels [R] (0..C-1, C = background)."""
    return torch.where(matched > 0, matched - 1, torch.full_like(matched, num_classes))


class ObjectivePredictor(nn.Module):
    """features [R, D] -> class logits [R, K] (the objective's classifier) and box deltas [R, C * 4].

    There is no background box column: positives regress with their own class's 4 deltas.
    """

    def __init__(self, cls_score: nn.Module, in_features: int, num_classes: int):
        super().__init__()
        self.cls_score = cls_score  # the objective's own layer (Linear or NormedLinear, initialised by it)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


def box_regression_loss(deltas: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
                        num_classes: int, kind: str = "l1") -> torch.Tensor:
    """Sum over positive RoIs of the 4-coordinate loss, divided by all R sampled RoIs (mmdet, torchvision).

    deltas [R, C * 4], labels [R] in 0..C (C = background), targets [R, 4] encoded deltas.
    """
    pos = torch.where(labels < num_classes)[0]
    pred = deltas.reshape(deltas.shape[0], num_classes, 4)[pos, labels[pos]]
    if kind == "l1":
        loss = F.l1_loss(pred, targets[pos], reduction="sum")
    elif kind == "smooth_l1":
        loss = F.smooth_l1_loss(pred, targets[pos], beta=1 / 9, reduction="sum")
    else:
        raise ValueError(f"unknown box loss '{kind}'; valid: l1, smooth_l1")
    return loss / max(labels.numel(), 1)


def class_mask_logits(predictor: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """torchvision's MaskRCNNPredictor, computing only each RoI's own class channel.

    features [R, D, M, M] (mask head output), labels [R] in 0..C-1 -> mask logits [R, 2M, 2M], equal to
    predictor(features)[arange(R), labels]. Two savings: the C - 1 unused class channels are never
    computed, and the kernel-2 stride-2 deconvolution out[o, 2h+a, 2w+b] = sum_c x[c, h, w] W[c, o, a, b]
    + bias[o] runs as one matrix product per RoI on the M x M grid (the CPU's transposed convolution
    is slow), the 2x2 interleave applied only to the final single-channel logits.
    """
    deconv, logits_layer = predictor.conv5_mask, predictor.mask_fcn_logits
    weight = logits_layer.weight[labels, :, 0, 0]  # [R, D']
    bias = logits_layer.bias[labels]
    if not (deconv.kernel_size == (2, 2) and deconv.stride == (2, 2) and deconv.padding == (0, 0)):
        x = predictor.relu(deconv(features))
        return torch.einsum("rdhw,rd->rhw", x, weight) + bias.view(-1, 1, 1)
    r, d, m, _ = features.shape
    d_out = deconv.weight.shape[1]
    w = deconv.weight.permute(1, 2, 3, 0).reshape(d_out * 4, d)  # rows (o, a, b)
    z = F.conv1d(features.reshape(r, d, m * m), w.unsqueeze(-1), deconv.bias.repeat_interleave(4))
    z = F.relu(z, inplace=True).view(r, d_out, 4 * m * m)
    logits = torch.bmm(weight.unsqueeze(1), z).view(r, 4, m, m) + bias.view(-1, 1, 1, 1)  # [R, (a, b), M, M]
    return F.pixel_shuffle(logits, 2)[:, 0]


def mask_loss(logits: torch.Tensor, proposals: list[torch.Tensor], gt_masks: list[torch.Tensor],
              matched: list[torch.Tensor]) -> torch.Tensor:
    """Mean BCE between logits [R, M, M] of the positive proposals and their GT masks cropped to them
    (rog.models.masks: the convention the inference paste inverts)."""
    size = logits.shape[-1]
    targets = torch.cat([mask_targets(m, p, i, size) for m, p, i in zip(gt_masks, proposals, matched)])
    if targets.numel() == 0:
        return logits.sum() * 0
    return F.binary_cross_entropy_with_logits(logits, targets)


def select_detections(boxes: torch.Tensor, scores: torch.Tensor, score_thresh: float, nms_thresh: float,
                      max_dets: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's candidates -> its detections.

    boxes [N, C, 4] (clipped, one per class), scores [N, C] -> boxes [D, 4], scores [D], labels [D] in
    0..C-1, sorted by score, D <= max_dets: score > score_thresh, non-empty box, class-wise NMS.
    """
    num_classes = scores.shape[1]
    labels = torch.arange(num_classes, device=scores.device).expand_as(scores).reshape(-1)
    boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1)
    keep = torch.where(scores > score_thresh)[0]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = box_ops.batched_nms(boxes, scores, labels, nms_thresh)[:max_dets]  # sorted by score
    return boxes[keep], scores[keep], labels[keep]


def predicted_box_ious(box_coder, deltas: torch.Tensor, labels: torch.Tensor, proposals: list[torch.Tensor],
                       matched_idxs: list[torch.Tensor], gt_boxes: list[torch.Tensor],
                       num_classes: int) -> torch.Tensor:
    """[R] IoU of each RoI's predicted box (its label's deltas, detached) with its ground truth.

    RS loss's sorting targets (peers.md section 8). deltas [R, C*4]; labels [R] in 0..C (background
    RoIs get 0); proposals, matched_idxs and gt_boxes per image.
    """
    fg = labels < num_classes
    ious = torch.zeros(labels.shape[0], dtype=deltas.dtype, device=deltas.device)
    if not bool(fg.any()):
        return ious
    rows = fg.nonzero().squeeze(1)
    columns = labels[rows, None] * 4 + torch.arange(4, device=labels.device)
    predicted = box_coder.decode_single(deltas.detach()[rows[:, None], columns], torch.cat(proposals)[rows])
    truth = torch.cat([g[m.clamp(min=0)] for g, m in zip(gt_boxes, matched_idxs)])[rows]
    top_left = torch.maximum(predicted[:, :2], truth[:, :2])
    bottom_right = torch.minimum(predicted[:, 2:], truth[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(1)
    union = box_ops.box_area(predicted) + box_ops.box_area(truth) - inter
    ious[rows] = (inter / union.clamp(min=1e-12)).clamp(0, 1)
    return ious


class ObjectiveRoIHeads(RoIHeads):
    """torchvision's RoIHeads with an objective's loss and scores instead of the softmax CE.

    objective: nn.Module with `num_outputs`, `loss(logits, labels) -> dict`, `scores(logits) -> [R, C]`.
    ranking: the ranking term (rog.losses.ranking_terms: GAP, AP loss or RS loss) or None; applied to the
    same logits (it reads the first C columns). A term with `needs_ious` (RS loss) also gets each
    positive's IoU target (see `predicted_box_ious`).
    Training losses: the objective's terms, `loss_gap` (the ranking term, whichever it is),
    `loss_box_reg` and (Mask R-CNN) `loss_mask`.
    """

    def __init__(self, *, objective: nn.Module, ranking: nn.Module | None, num_classes: int,
                 box_loss: str = "l1", score_shift: torch.Tensor | None = None, masks: bool = True,
                 masks_per_img: int | None = None, grad_stats=None, **kwargs):
        """score_shift: [C], subtracted from the foreground logits before `objective.scores` (NorCal,
        renormalised: gamma log n_c; not saved in the state dict). masks=False: boxes only at inference
        (the mask branch is kept, so a Mask R-CNN checkpoint still loads). masks_per_img: masks only for
        each image's first (highest-scored) masks_per_img detections, None = all: a large box budget K
        for Table 3 without pasting K masks. grad_stats: a rog.engine.diagnostics.GradientStats tapping
        the classification gradients, or None."""
        super().__init__(**kwargs)
        self.objective = objective
        self.ranking = ranking
        self.num_classes = num_classes
        self.box_loss = box_loss
        self.register_buffer("score_shift", score_shift, persistent=False)
        self.masks = masks
        self.masks_per_img = masks_per_img
        self.grad_stats = grad_stats

    def has_mask(self) -> bool:
        return self.masks and super().has_mask()

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """[R, K] logits -> [R, C] scores: the objective's, on NorCal-shifted logits when score_shift is set."""
        if self.score_shift is not None:
            C = self.num_classes
            logits = torch.cat([logits[:, :C] - self.score_shift.to(logits.dtype), logits[:, C:]], dim=1)
        return self.objective.scores(logits)

    def classification_losses(self, logits: torch.Tensor, labels: torch.Tensor,
                              ious: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """logits [R, K], labels [R] in 0..C -> the objective's loss terms plus `loss_gap`.

        ious: [R] IoU targets, read only by a ranking term with `needs_ious`.
        """
        obj_in, ranking_in = logits, logits
        if self.grad_stats is not None:
            obj_in, ranking_in = self.grad_stats.tap(logits, labels)
        losses = dict(self.objective.loss(obj_in, labels))
        if self.ranking is not None:  # logged as loss_gap, whichever term it is (results/ read that key)
            extra = (ious,) if self.ranking.needs_ious else ()
            losses["loss_gap"] = self.ranking(ranking_in, labels, *extra)
        return losses

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """Logits [R, K], deltas [R, C*4], proposals per image -> per-image boxes, scores, labels (0..C-1)."""
        scores = self.scores(class_logits)
        boxes = self.box_coder.decode(box_regression, proposals)  # [R, C, 4]
        counts = [len(p) for p in proposals]
        out_boxes, out_scores, out_labels = [], [], []
        for b, s, shape in zip(boxes.split(counts), scores.split(counts), image_shapes):
            b, s, label = select_detections(box_ops.clip_boxes_to_image(b, shape), s, self.score_thresh,
                                            self.nms_thresh, self.detections_per_img)
            out_boxes.append(b)
            out_scores.append(s)
            out_labels.append(label)
        return out_boxes, out_scores, out_labels

    def forward(self, features, proposals, image_shapes, targets=None):
        """Training: (empty list, losses). Inference: (per-image dicts of boxes, scores, labels[, masks]), {}."""
        if self.training:
            if targets is None:
                raise ValueError("ObjectiveRoIHeads: training needs targets")
            shifted = [dict(t, labels=t["labels"] + 1) for t in targets]  # torchvision: 0 = background
            proposals, matched_idxs, matched_labels, regression_targets = self.select_training_samples(
                proposals, shifted)
        features_rois = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(features_rois)

        if not self.training:
            boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals,
                                                                image_shapes)
            result = [{"boxes": b, "scores": s, "labels": label} for b, s, label in zip(boxes, scores, labels)]
            if self.has_mask():
                # masks only for the detections kept by the top-K cut (the first masks_per_img of them:
                # "masks" [D', 1, M, M] belongs to boxes[:D']); labels 0..C-1 index the mask channels
                if self.masks_per_img is not None:
                    boxes, labels = [b[:self.masks_per_img] for b in boxes], [x[:self.masks_per_img] for x in labels]
                mask_features = self.mask_head(self.mask_roi_pool(features, boxes, image_shapes))
                probs = class_mask_logits(self.mask_predictor, mask_features, torch.cat(labels)).sigmoid()
                for p, r in zip(probs.split([len(b) for b in boxes]), result):
                    r["masks"] = p[:, None]  # [D', 1, M, M], as torchvision's postprocess expects
            return result, {}

        labels = objective_labels(torch.cat(matched_labels), self.num_classes)
        ious = None
        if self.ranking is not None and self.ranking.needs_ious:
            ious = predicted_box_ious(self.box_coder, box_regression, labels, proposals, matched_idxs,
                                      [t["boxes"] for t in targets], self.num_classes)
        losses = self.classification_losses(class_logits, labels, ious)
        losses["loss_box_reg"] = box_regression_loss(box_regression, labels, torch.cat(regression_targets),
                                                     self.num_classes, self.box_loss)
        if self.has_mask():
            positive = [torch.where(m > 0)[0] for m in matched_labels]
            mask_proposals = [p[i] for p, i in zip(proposals, positive)]
            mask_matched = [m[i] for m, i in zip(matched_idxs, positive)]
            mask_features = self.mask_head(self.mask_roi_pool(features, mask_proposals, image_shapes))
            mask_labels = torch.cat([t["labels"][m] for t, m in zip(targets, mask_matched)])
            logits = class_mask_logits(self.mask_predictor, mask_features, mask_labels)
            losses["loss_mask"] = mask_loss(logits, mask_proposals, [t["masks"] for t in targets], mask_matched)
        return [], losses

"""The OpenImages detection challenge metric (AP at IoU 0.5), written afresh from its published rules.

Sources: the TF Object Detection API, research/object_detection/metrics/oid_challenge_evaluation.py
and utils/object_detection_evaluation.py (``OpenImagesChallengeEvaluator``: group_of_weight 1,
IoU 0.5, evaluatable labels), utils/per_image_evaluation.py (``_compute_tp_fp_for_single_class``),
utils/metrics.py (``compute_precision_recall``, ``compute_average_precision``) and
dataset_tools/oid_hierarchical_labels_expansion.py (the expansion); the challenge's own description
(tensorflow/datasets, open_images_challenge2019_detection: "all other unannotated classes are excluded
from evaluation in that image"). The protocol, step by step:

1. Hierarchy. Each ground-truth box of class c also counts as a box of every ancestor of c (same
   coordinates, same IsGroupOf). A verified-present label also verifies its ancestors; a
   verified-absent label also verifies its descendants absent.
2. Evaluated classes per image: its verified labels (present or absent, expanded) and the classes of
   its (expanded) boxes. A detection of any other class on that image is dropped: it is neither a
   true nor a false positive. Detections themselves are not expanded (the challenge expects them for
   every level; mmdetection's OpenImagesMetric can expand them, ``expand_detections=True`` here).
3. Per image and class, detections by descending score. Each is compared with the non-group-of boxes
   and takes the one of highest IoU: if IoU >= 0.5 and that box is not yet taken it is a true
   positive and takes it; otherwise it is not (a box already taken is never passed on to the
   second best).
4. Detections still unmatched are compared with the group-of boxes by IoA (intersection over the
   detection's area) and take the one of highest IoA: if IoA >= 0.5 the detection is absorbed (neither
   true nor false positive) and that group-of box scores one true positive with the highest score of
   the detections it absorbed. A group-of box counts as one ground-truth instance, found or not.
5. The rest are false positives. Per class over all images: detections sorted by score (descending),
   precision and recall at each, precision made non-increasing from the right, AP = sum over recall
   steps of (step) x precision (VOC's, no 11- or 101-point sampling). A class without ground-truth
   instances has no AP (-1 here, NaN in the TF code) and is left out of the mean.

Boxes here are pixels [x0, y0, x1, y1]; IoU and IoA are unchanged by the per-image scaling of the
challenge's normalised coordinates. Ties in score are broken by the input order (stable sort; the TF
code's ``argsort(scores)[::-1]`` reverses ties), so only tied scores can make the two differ.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

IOU_THRESHOLD = 0.5


def xywh_to_xyxy(boxes) -> np.ndarray:
    """[N, 4] x, y, w, h -> [N, 4] x0, y0, x1, y1 (float64)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, 4] x [M, 4] (x0, y0, x1, y1) -> [N, M] intersection areas."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _area(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] intersection over union (0 where the union is empty)."""
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def ioa(detections: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[N, M] intersection over the detection's area (0 for an empty detection)."""
    inter = _intersection(detections, boxes)
    area = _area(detections)[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def match_image_class(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                      gt_group_of: np.ndarray, threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Steps 3-4 for one image and class.

    det_boxes [N, 4], det_scores [N], gt_boxes [M, 4] (x0, y0, x1, y1), gt_group_of [M] bool.
    Returns (scores [K], is_tp [K] bool): the detections that count (true or false positives) and one
    true positive per group-of box that absorbed a detection, with that box's best score.
    """
    order = np.argsort(-det_scores, kind="stable")
    boxes, scores = det_boxes[order], det_scores[order]
    n = len(scores)
    tp = np.zeros(n, dtype=bool)
    single, group = gt_boxes[~gt_group_of], gt_boxes[gt_group_of]
    if len(single) and n:
        overlaps = iou(boxes, single)
        best = overlaps.argmax(axis=1)
        taken = np.zeros(len(single), dtype=bool)
        for i in range(n):
            j = best[i]
            if overlaps[i, j] >= threshold and not taken[j]:
                tp[i] = taken[j] = True
    absorbed = np.zeros(n, dtype=bool)
    group_scores = np.zeros(len(group))
    group_found = np.zeros(len(group), dtype=bool)
    if len(group) and n:
        overlaps = ioa(boxes, group)
        best = overlaps.argmax(axis=1)
        for i in np.flatnonzero(~tp):
            j = best[i]
            if overlaps[i, j] >= threshold:
                absorbed[i] = True
                group_found[j] = True
                group_scores[j] = max(group_scores[j], scores[i])
    keep = ~absorbed
    return (np.concatenate([scores[keep], group_scores[group_found]]),
            np.concatenate([tp[keep], np.ones(int(group_found.sum()), dtype=bool)]))


def average_precision(scores: np.ndarray, is_tp: np.ndarray, num_gt: int) -> float:
    """Step 5: VOC-style AP of one class over all images; -1 when num_gt is 0."""
    if num_gt <= 0:
        return -1.0
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(is_tp, dtype=np.float64)[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    precision = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    recall = np.concatenate([[0.0], tp / num_gt, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def hierarchy(categories: Iterable[Mapping]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """(ancestors, descendants) of each category id, from the categories' ``ancestor_ids``."""
    up = {int(c["id"]): {int(a) for a in c.get("ancestor_ids", [])} for c in categories}
    down: dict[int, set[int]] = {c: set() for c in up}
    for c, above in up.items():
        for a in above:
            down.setdefault(a, set()).add(c)
    return up, down


def expanded_ground_truth(gt: Mapping) -> tuple[dict, dict[int, set[int]]]:
    """Steps 1-2: ({(image id, category id): (boxes [M, 4], group_of [M])}, {image id: evaluated
    category ids}) of an OpenImages ground truth (rog.data.openimages' json)."""
    up, down = hierarchy(gt["categories"])
    rows: dict[tuple[int, int], list] = defaultdict(list)
    for ann in gt["annotations"]:
        box = xywh_to_xyxy(ann["bbox"])[0]
        for c in {int(ann["category_id"]), *up.get(int(ann["category_id"]), ())}:
            rows[(int(ann["image_id"]), c)].append((box, bool(ann.get("is_group_of", 0) == 1)))
    evaluated: dict[int, set[int]] = {}
    for img in gt["images"]:
        found = set()
        for c in img.get("pos_category_ids", []):
            found |= {int(c), *up.get(int(c), ())}
        for c in img.get("neg_category_ids", []):
            found |= {int(c), *down.get(int(c), ())}
        evaluated[int(img["id"])] = found
    for image_id, c in rows:
        evaluated.setdefault(image_id, set()).add(c)
    boxes = {key: (np.array([b for b, _ in v]).reshape(-1, 4), np.array([g for _, g in v], dtype=bool))
             for key, v in rows.items()}
    return boxes, evaluated


def challenge_metrics(gt: Mapping, results: Iterable[Mapping], expand_detections: bool = False,
                      threshold: float = IOU_THRESHOLD) -> dict:
    """The challenge's AP@0.5 of LVIS-style results (image_id, category_id, bbox [x, y, w, h], score).

    gt: rog.data.openimages' converted json (categories with ancestor_ids and group; images with
    pos/neg_category_ids; annotations with is_group_of). Returns {"AP50": mean over classes with
    ground truth, "AP1".."AP5": the same over each frequency group (-1 for a group without any),
    "per_category": [{"id", "name", "group", "num_gt", "num_detections", "AP"}], "num_detections_dropped"
    (detections of a class not evaluated in their image), "protocol": {...}}.
    """
    boxes, evaluated = expanded_ground_truth(gt)
    up, _ = hierarchy(gt["categories"])
    per_key: dict[tuple[int, int], list] = defaultdict(list)
    dropped = 0
    for r in results:
        image_id, c = int(r["image_id"]), int(r["category_id"])
        for cls in ({c, *up.get(c, ())} if expand_detections else {c}):
            if cls in evaluated.get(image_id, ()):
                per_key[(image_id, cls)].append((r["bbox"], float(r["score"])))
            else:
                dropped += 1
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    hits: dict[int, list[np.ndarray]] = defaultdict(list)
    num_gt: dict[int, int] = defaultdict(int)
    for (image_id, c), (gt_boxes, group_of) in boxes.items():
        num_gt[c] += len(gt_boxes)
    for key in set(per_key) | set(boxes):
        dets = per_key.get(key, [])
        gt_boxes, group_of = boxes.get(key, (np.zeros((0, 4)), np.zeros(0, dtype=bool)))
        det_boxes = xywh_to_xyxy([d[0] for d in dets])
        s, t = match_image_class(det_boxes, np.array([d[1] for d in dets], dtype=np.float64), gt_boxes,
                                 group_of, threshold)
        scores[key[1]].append(s)
        hits[key[1]].append(t)
    per_category = []
    for cat in sorted(gt["categories"], key=lambda c: c["id"]):
        c = int(cat["id"])
        s = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        t = np.concatenate(hits[c]) if hits[c] else np.zeros(0, dtype=bool)
        per_category.append({"id": c, "name": cat.get("name", str(c)), "group": cat.get("group"),
                             "num_gt": int(num_gt[c]), "num_detections": int(len(s)),
                             "AP": average_precision(s, t, num_gt[c])})
    out = {"AP50": _mean([p["AP"] for p in per_category])}
    groups = sorted({p["group"] for p in per_category if p["group"] is not None})
    for g in groups:
        out[f"AP{g}"] = _mean([p["AP"] for p in per_category if p["group"] == g])
    out.update({"per_category": per_category, "num_detections_dropped": dropped, "protocol": {
        "iou_threshold": threshold, "group_of": "IoA >= threshold, one true positive per group-of box (weight 1)",
        "hierarchy": "ground-truth boxes and verified-present labels expanded to ancestors, verified-absent "
                     "labels to descendants", "expand_detections": expand_detections,
        "ap": "VOC: non-increasing precision, summed over recall steps",
        "source": "TF Object Detection API OpenImagesChallengeEvaluator (written afresh)"}})
    return out


def _mean(values: list[float]) -> float:
    valid = [v for v in values if v > -1]
    return float(np.mean(valid)) if valid else -1.0

"""The paper's metrics beyond LVIS's summary, all into one JSON-serialisable dict (metrics.json).

- The LVIS metrics (``lvis_eval.METRICS``) at the main max-detections K (LVIS: 300).
- The same under a list of K (Table 3). lvis-api applies K in ``LVISResults(max_dets=K)``: each image
  keeps its K best results across categories, and every kept result is evaluated (``LVISEval``'s own
  ``params.max_dets`` only names the AR key). So K=1000 really evaluates up to 1000 results per
  image, *if the results hold that many*: a detector run with at most 300 per image gives the same
  numbers for K=300 and K=1000. Each K's entry therefore records ``saturated``: true when no image
  has more than K results, i.e. a larger K cannot change anything. Recall (AR) never decreases with
  K (results added by a larger K rank below every kept one of their image, so they cannot undo a
  match); AP usually grows but need not (an added false positive can outrank another image's hits).
- AP of five frequency groups (Table 6): categories ranked by training image count (ties by id),
  split into five groups of equal size (sizes differ by one when C is not a multiple of five);
  group AP averages the per-category APs of its members that have ground truth, as LVIS does.
  With fewer categories than groups the group table is left out, with a warning; the rest stays.
- AP per category: the precision array averaged over IoU thresholds and recall points (area all),
  -1 for a category without ground truth. Their mean over categories with ground truth is AP.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from rog.evaluation.lvis_eval import DEFAULT_BACKEND, Evaluation, GroundTruth, evaluate_detailed, ground_truth
from rog.evaluation.results import DEFAULT_MAX_DETS, check_results, read_results_json, write_json_atomic

NUM_FREQUENCY_GROUPS = 5


def image_counts_from_json(train_json_path: str | os.PathLike) -> dict[int, int]:
    """category id -> training image count, from an LVIS-format train json's categories."""
    with open(train_json_path) as f:
        categories = json.load(f)["categories"]
    missing = [c["id"] for c in categories if "image_count" not in c]
    if missing:
        raise ValueError(f"{train_json_path}: categories {missing[:5]} have no image_count")
    return {int(c["id"]): int(c["image_count"]) for c in categories}


def per_category_ap(precision: np.ndarray) -> np.ndarray:
    """[C] AP per category from a [T, R, C, A] precision array (area 'all' = index 0); -1 without GT."""
    p = precision[:, :, :, 0]
    has_gt = (p > -1).all(axis=(0, 1))
    return np.where(has_gt, np.where(p > -1, p, 0).mean(axis=(0, 1)), -1.0)


def frequency_groups(category_ids: Sequence[int], image_counts: Mapping[int, int],
                     num_groups: int = NUM_FREQUENCY_GROUPS) -> list[list[int]]:
    """Split categories into num_groups groups of (near) equal size by training image count.

    Returns num_groups lists of category ids, rarest group first; within the ranking, equal counts
    are ordered by category id. Raises ValueError if a category has no count or C < num_groups.
    """
    missing = [c for c in category_ids if c not in image_counts]
    if missing:
        raise ValueError(f"no training image count for categories {missing[:5]} ({len(missing)} in all)")
    if len(category_ids) < num_groups:
        raise ValueError(f"{len(category_ids)} categories cannot make {num_groups} groups")
    ranked = sorted(category_ids, key=lambda c: (image_counts[c], c))
    return [[int(c) for c in part] for part in np.array_split(np.array(ranked), num_groups)]


def _mean_ap(ap: np.ndarray) -> float:
    valid = ap[ap > -1]
    return float(valid.mean()) if len(valid) else -1.0


def _summary(ev: Evaluation, gt: GroundTruth, image_counts: Mapping[int, int] | None,
             names: Mapping[int, str], groups: list[list[int]] | None) -> dict:
    ap = per_category_ap(ev.precision)
    index = {c: i for i, c in enumerate(ev.category_ids)}
    out = {"metrics": ev.metrics, "num_results": ev.num_results}
    out["per_category"] = [
        {"id": int(c), "name": names.get(c, str(c)), "frequency": gt.frequency[c],
         "train_image_count": None if image_counts is None else image_counts.get(c), "AP": float(ap[index[c]])}
        for c in ev.category_ids
    ]
    if groups is not None:
        out["frequency_groups"] = []
        for g, members in enumerate(groups):
            member_ap = ap[[index[c] for c in members]]
            counts = [image_counts[c] for c in members]
            out["frequency_groups"].append({
                "group": g + 1, "train_image_count_range": [int(min(counts)), int(max(counts))],
                "num_categories": len(members), "num_with_gt": int((member_ap > -1).sum()),
                "AP": _mean_ap(member_ap), "category_ids": members})
    return out


def evaluate_all(gt_json, results_bbox, results_segm=None, max_dets_list: Sequence[int] = (100, 300, 1000),
                 train_image_counts: Mapping[int, int] | str | os.PathLike | None = None,
                 max_dets: int = DEFAULT_MAX_DETS, backend: str = DEFAULT_BACKEND,
                 num_groups: int = NUM_FREQUENCY_GROUPS, mask_max_dets: int | None = None) -> dict:
    """Every metric of the paper for bbox and (when given) segm results, as one JSON-serialisable dict.

    gt_json:            LVIS-format ground truth json path (or a loaded GroundTruth).
    results_bbox/segm:  LVIS records or a results json path; results_segm may be None (no masks).
    max_dets_list:      the K of the max-detections sweep (Table 3).
    train_image_counts: category id -> training image count, or the train json's path; None uses
                        the ground truth's own categories' image_count if every category has one
                        (LVIS's val json carries the training counts), else frequency groups are
                        left out and the dict says why.
    max_dets:           K of the main metrics (LVIS: 300).
    mask_max_dets:      the detector's mask budget per image (model.test.masks_per_img; None: every
                        detection has a mask): segm's sweep leaves out the K above it, whose AP would
                        be the budget's.
    Returns {"protocol": {...}, "bbox": {...}, "segm": {...}} where each iou type holds "metrics",
    "num_results", "max_results_per_image", "max_dets_sweep" {str(K): {"metrics", "saturated"}},
    "per_category" [{"id", "name", "frequency", "train_image_count", "AP"}] and "frequency_groups"
    [{"group", "train_image_count_range", "num_categories", "num_with_gt", "AP", "category_ids"}].
    """
    gt = ground_truth(gt_json)
    with open(gt.path) as f:
        categories = json.load(f)["categories"]
    names = {c["id"]: c.get("name", str(c["id"])) for c in categories}
    counts_source = "train json" if isinstance(train_image_counts, (str, os.PathLike)) else "given"
    if isinstance(train_image_counts, (str, os.PathLike)):
        train_image_counts = image_counts_from_json(train_image_counts)
    elif train_image_counts is None:
        counts_source = "ground truth json categories"
        if all("image_count" in c for c in categories):
            train_image_counts = {c["id"]: int(c["image_count"]) for c in categories}
        else:
            counts_source = "none: no training image counts given, frequency groups left out"
    groups = None
    if train_image_counts is not None and len(gt.category_ids) < num_groups:
        counts_source = (f"{counts_source}; frequency groups left out: {len(gt.category_ids)} categories "
                         f"cannot make {num_groups} groups")
        warnings.warn(f"{gt.path}: {len(gt.category_ids)} categories cannot make {num_groups} frequency groups; "
                      "the group table is left out, every other metric is computed", stacklevel=2)
    elif train_image_counts is not None:  # checked before any evaluation runs
        groups = frequency_groups(gt.category_ids, train_image_counts, num_groups)
    sweep = sorted({int(k) for k in max_dets_list})
    out = {"protocol": {
        "ground_truth": gt.path, "backend": backend, "max_dets": max_dets, "max_dets_sweep": sweep,
        "mask_max_dets": mask_max_dets,
        "iou_thresholds": "0.50:0.05:0.95", "recall_points": 101,
        "area_ranges": {"small": "< 32^2", "medium": "32^2 - 96^2", "large": ">= 96^2"},
        "num_frequency_groups": num_groups, "train_image_counts": counts_source,
    }}
    for iou_type, results in (("bbox", results_bbox), ("segm", results_segm)):
        if results is None:
            continue
        if isinstance(results, (str, os.PathLike)):
            results = read_results_json(results)
        check_results(results, gt.image_ids, gt.category_ids, iou_type)
        per_image = np.bincount(np.unique([r["image_id"] for r in results], return_inverse=True)[1]) \
            if results else np.zeros(1, dtype=int)
        most = int(per_image.max())
        runs, saturated_run = {}, None
        ks = [k for k in sweep if iou_type == "bbox" or mask_max_dets is None or k <= mask_max_dets]
        for k in sorted({*ks, max_dets}):
            if k < most:
                runs[k] = evaluate_detailed(gt, results, iou_type, k, backend, check=False)
            else:  # no image has more than k results: the cut keeps everything, as for any k' >= most
                saturated_run = saturated_run or evaluate_detailed(gt, results, iou_type, k, backend, check=False)
                runs[k] = saturated_run
        entry = _summary(runs[max_dets], gt, train_image_counts, names, groups)
        entry["max_results_per_image"] = most
        entry["max_dets_sweep"] = {str(k): {"metrics": runs[k].metrics, "saturated": most <= k} for k in ks}
        out[iou_type] = entry
    return out


def write_metrics_json(path: str | os.PathLike, metrics: dict):
    """Write evaluate_all's dict to path (e.g. OUT/metrics.json) atomically; returns the path."""
    return write_json_atomic(path, metrics)

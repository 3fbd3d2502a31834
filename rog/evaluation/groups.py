"""Table 6's metrics on OpenImages: AP of each of EQLv2's five frequency groups, and the challenge metric.

The groups come with the ground truth: rog.data.openimages stores each category's group (1..5,
rog.data.oid_groups: EQLv2's rule on training instance counts). Two readings are reported, both in
metrics.json under "openimages":

- "bbox": APbbox (COCO-style AP at IoU 0.50:0.95, the project's LVIS evaluator, rog.evaluation.metrics)
  and AP1..AP5, the mean of that evaluator's per-category AP over each group's categories with ground
  truth. This is what the issue asks for. Its protocol is LVIS's: a class is scored on an image where
  it has a box or is verified absent (neg_category_ids), boxes keep their own (leaf) labels, and a
  group-of box counts as one ordinary box (LVIS has no crowd flag).
- "challenge": the OpenImages challenge metric (rog.evaluation.oid_challenge, AP at IoU 0.5 with the
  hierarchy, group-of boxes and verified labels) and its AP1..AP5. EQLv2's AP1..AP5 are this one:
  its tools/parse_openimage_metric.py averages the TF evaluator's
  "OpenImagesDetectionChallenge_PerformanceByCategory/AP@0.5IOU" per group, so the paper's Table 6
  (EQLv2 55.1, ROG 58.2) is on this scale.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from rog.evaluation.oid_challenge import challenge_metrics


def is_openimages(gt: Mapping) -> bool:
    """Whether a ground truth json was converted from OpenImages (rog.data.openimages)."""
    return isinstance(gt.get("openimages"), dict)


def group_aps(per_category: Iterable[Mapping], group_of: Mapping[int, int]) -> dict[str, float]:
    """{"AP1": ..., "AP5": ...}: mean AP over each group's categories with ground truth (AP > -1);
    -1 for a group without any. per_category: [{"id", "AP"}]; group_of: category id -> group."""
    members: dict[int, list[float]] = {}
    for p in per_category:
        g = group_of.get(int(p["id"]))
        if g is not None:
            members.setdefault(g, [])
            if p["AP"] > -1:
                members[g].append(float(p["AP"]))
    return {f"AP{g}": (sum(v) / len(v) if v else -1.0) for g, v in sorted(members.items())}


def openimages_metrics(gt: Mapping, bbox_results: list[dict], bbox_entry: Mapping,
                       expand_detections: bool = False) -> dict:
    """metrics.json's "openimages" entry (module docstring).

    gt: the converted ground truth json; bbox_results: the LVIS-style box results; bbox_entry:
    rog.evaluation.metrics.evaluate_all's "bbox" entry (its metrics and per_category AP).
    """
    group_of = {int(c["id"]): int(c["group"]) for c in gt["categories"]}
    challenge = challenge_metrics(gt, bbox_results, expand_detections=expand_detections)
    groups = []
    for g in sorted(set(group_of.values())):
        cats = [c for c in gt["categories"] if c["group"] == g]
        counts = [int(c["instance_count"]) for c in cats]
        groups.append({"group": g, "num_categories": len(cats), "train_instance_count_range": [min(counts), max(counts)],
                       "category_ids": [int(c["id"]) for c in cats]})
    return {
        "group_rule": gt["openimages"].get("group_rule"),
        "groups": groups,
        "bbox": {"APbbox": float(bbox_entry["metrics"]["AP"]), **group_aps(bbox_entry["per_category"], group_of)},
        "challenge": challenge,
    }

"""The look-alike analysis: what the detector makes of each rare ground-truth object.

The paper's thesis is that rare classes are out-ranked, above all by frequent classes that look like
them. For every ground-truth instance of a rare category (LVIS frequency 'r') of the evaluation split:

- its *best match* is, among the image's top `max_dets` detections by score (the LVIS cut, any
  class), the one with the highest score among those whose box IoU with the object is >= 0.5 (ties:
  higher IoU, then the earlier record): the detection the detector ranks first on that object;
- its *outcome* is `correct` (best match of its own class), `lookalike` (of a look-alike class),
  `other` (any other class) or `missed` (no detection with IoU >= 0.5); lookalike and other are
  counted per frequency group r/c/f of the predicted class;
- `covered` counts the objects whose own class is among the detections with IoU >= 0.5 at all
  (covered but not correct: the rare class was found and out-ranked on its own object);
- its *own-class rank* is the rank, within the image's top `max_dets` detections by score (any class),
  of the highest-scoring detection of its own class with IoU >= 0.5: 1 + the number of the image's kept
  detections that score higher (ties share a rank), or None when no such detection is kept. A rare
  object is lost to a per-image cap K exactly when this rank exceeds K (the paper's Table 3).

Boxes only (box IoU by pycocotools), every detection counted whatever its class (LT-Glyphs is
exhaustively annotated; on LVIS a detection of a class not verified for the image counts too).
Look-alikes come from the caller (rog.data.lookalikes for LT-Glyphs); with none, no outcome is
`lookalike`.

    analysis = lookalike_analysis(gt_json, results_bbox, lookalikes)   # JSON-serialisable dict
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pycocotools.mask as mask_utils

from rog.evaluation.results import DEFAULT_MAX_DETS, gt_and_results, top_k_per_image, write_json_atomic

IOU_THRESHOLD = 0.5
GROUPS = ("r", "c", "f")
OUTCOMES = ("correct", "lookalike", "other", "missed")
RULE = ("best match of a rare ground-truth object: among the image's top {k} detections by score (any "
        "class), the highest-scoring one with box IoU >= {iou} (ties: higher IoU, then the earlier record); "
        "outcome correct / lookalike / other (by the predicted class's frequency group) / missed")


def best_match(gt_box: Sequence[float], boxes: np.ndarray, scores: np.ndarray,
               iou_threshold: float = IOU_THRESHOLD) -> tuple[int | None, np.ndarray]:
    """(index of the best match or None, bool [D] mask of the detections with IoU >= threshold).

    gt_box: xywh; boxes: [D, 4] xywh; scores: [D]. The best match: highest score among the covering
    detections, ties by higher IoU, then lower index."""
    if not len(boxes):
        return None, np.zeros(0, dtype=bool)
    iou = np.asarray(mask_utils.iou(np.asarray(boxes, dtype=np.float64), np.asarray([gt_box], dtype=np.float64),
                                    [0]), dtype=np.float64).reshape(-1)
    covering = iou >= iou_threshold
    if not covering.any():
        return None, covering
    candidates = np.flatnonzero(covering)
    order = sorted(candidates, key=lambda i: (-scores[i], -iou[i], i))
    return int(order[0]), covering


def own_class_rank(gt_category: int, categories: np.ndarray, scores: np.ndarray, covering: np.ndarray) -> int | None:
    """1 + the number of detections scoring above the best covering detection of `gt_category`, or None.

    categories, scores, covering: [D] over the image's kept detections (covering: IoU >= threshold)."""
    own = covering & (categories == gt_category)
    if not own.any():
        return None
    return int(1 + np.count_nonzero(scores > scores[own].max()))


def classify(gt_category: int, predicted: int | None, lookalikes: Iterable[int]) -> str:
    """'correct', 'lookalike', 'other' or 'missed' (predicted None)."""
    if predicted is None:
        return "missed"
    if predicted == gt_category:
        return "correct"
    return "lookalike" if predicted in set(lookalikes) else "other"


def lookalike_analysis(gt_json: str | os.PathLike | dict, results: Sequence[dict] | str | os.PathLike,
                       lookalikes: Mapping[int, Sequence] | None = None, max_dets: int = DEFAULT_MAX_DETS,
                       iou_threshold: float = IOU_THRESHOLD, definition: str = "") -> dict:
    """The analysis of every rare ground-truth instance (see the module docstring).

    gt_json: an LVIS ground truth (path or loaded dict); results: LVIS bbox records or their json path;
    lookalikes: category id -> its look-alikes, as ids or (id, similarity) pairs; definition: how they
    were defined (recorded). Returns {"rule", "iou_threshold", "max_dets", "lookalike_definition",
    "num_images", "counts": {"instances", "correct", "lookalike": {r, c, f}, "other": {r, c, f},
    "missed", "covered"}, "rare_categories": [{"id", "name", "glyph", "instances", "lookalikes": [[id,
    similarity or None], ...]}],
    "own_class_ranks": [[gt id, own-class rank or None] per rare instance, in annotation order],
    "confusion": {gt id: {predicted id | "missed": n}}, "categories": {id: {"name", "glyph",
    "frequency"}} (the ones named above)}; ids as strings (json keys)."""
    dataset, results = gt_and_results(gt_json, results)
    lookalikes = {int(k): dict(_pair(v) for v in vs) for k, vs in (lookalikes or {}).items()}
    categories = {int(c["id"]): c for c in dataset["categories"]}
    frequency = {cid: c.get("frequency") for cid, c in categories.items()}
    unknown = sorted({g for g in frequency.values()} - set(GROUPS))
    if unknown:
        raise ValueError(f"categories with frequency {unknown}: expected r, c or f (LVIS v1)")
    rare = {cid for cid, g in frequency.items() if g == "r"}
    by_image: dict[int, list[dict]] = {}
    for r in top_k_per_image(results, max_dets):
        by_image.setdefault(int(r["image_id"]), []).append(r)
    counts = {"instances": 0, "correct": 0, "lookalike": dict.fromkeys(GROUPS, 0),
              "other": dict.fromkeys(GROUPS, 0), "missed": 0, "covered": 0}
    confusion: dict[int, dict] = {}
    instances: dict[int, int] = {}
    ranks: list[list] = []
    for ann in dataset["annotations"]:
        gt = int(ann["category_id"])
        if gt not in rare or ann.get("iscrowd", 0):
            continue
        dets = by_image.get(int(ann["image_id"]), [])
        boxes = np.array([d["bbox"] for d in dets], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d["score"] for d in dets], dtype=np.float64)
        index, covering = best_match(ann["bbox"], boxes, scores, iou_threshold)
        predicted = None if index is None else int(dets[index]["category_id"])
        outcome = classify(gt, predicted, lookalikes.get(gt, ()))
        counts["instances"] += 1
        instances[gt] = instances.get(gt, 0) + 1
        if outcome in ("lookalike", "other"):
            counts[outcome][frequency[predicted]] += 1
        else:
            counts[outcome] += 1
        counts["covered"] += int(any(int(dets[i]["category_id"]) == gt for i in np.flatnonzero(covering)))
        classes = np.array([int(d["category_id"]) for d in dets], dtype=np.int64)
        ranks.append([gt, own_class_rank(gt, classes, scores, covering)])
        row = confusion.setdefault(gt, {})
        key = "missed" if predicted is None else predicted
        row[key] = row.get(key, 0) + 1
    named = set(confusion) | {p for row in confusion.values() for p in row if p != "missed"} | \
        {o for g in instances for o in lookalikes.get(g, ())}
    return {
        "rule": RULE.format(k=max_dets, iou=iou_threshold), "iou_threshold": iou_threshold, "max_dets": max_dets,
        "lookalike_definition": definition or "none given",
        "num_images": len(dataset["images"]), "counts": counts,
        "rare_categories": [
            {"id": cid, "name": categories[cid].get("name"), "glyph": categories[cid].get("glyph"),
             "instances": instances[cid],
             "lookalikes": [[o, sim] for o, sim in lookalikes.get(cid, {}).items() if o in categories]}
            for cid in sorted(instances)],
        "own_class_ranks": ranks,
        "confusion": {str(g): {str(k): v for k, v in sorted(row.items(), key=lambda kv: str(kv[0]))}
                      for g, row in sorted(confusion.items())},
        "categories": {str(c): {"name": categories[c].get("name"), "glyph": categories[c].get("glyph"),
                                "frequency": frequency[c]} for c in sorted(named)},
    }


def _pair(value) -> tuple[int, float | None]:
    """A look-alike as given (an id or an (id, similarity) pair) -> (id, similarity or None)."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), float(value[1])
    return int(value), None


def write_lookalike_json(path: str | os.PathLike, analysis: dict):
    """Write lookalike_analysis's dict atomically; returns the path."""
    return write_json_atomic(path, analysis)


def dataset_lookalikes(dataset_params: dict, categories: Sequence[dict]) -> tuple[dict, str]:
    """(look-alikes, their definition) for the dataset of `dataset_params` (params.yaml's dataset):
    LT-Glyphs' from its glyphs drawn in its snapshot's fonts (rog.data.lookalikes), none for another
    dataset (every confusion is then 'other')."""
    from rog.data import lookalikes as shapes
    from rog.data.registry import dataset_spec

    if not dataset_spec(dataset_params.get("name")).glyphs or not all(c.get("glyph") for c in categories):
        return {}, f"none: look-alikes are defined for LT-Glyphs only (dataset {dataset_params.get('name')})"
    glyphs = dataset_params["glyphs"]
    pairs = shapes.lookalikes(categories, glyphs["snapshot"], glyphs["fonts"])
    definition = (f"two categories are look-alikes when their glyphs, drawn in the dataset's {len(glyphs['fonts'])} "
                  f"fonts, cut to their ink box and scaled to a {shapes.SHAPE_SIZE} px longer side (aspect kept), "
                  f"overlap by IoU >= {shapes.LOOKALIKE_IOU} on average over the fonts (rog.data.lookalikes)")
    return pairs, definition

"""Detections -> LVIS results records, the LVIS top-K-per-image cut, checks, and results json files.

An LVIS results file is a json list of records, one per detection:

    {"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float,
     "segmentation": {"size": [H, W], "counts": str}}      # segmentation: segm results only

Boxes are absolute pixel xywh (COCO/LVIS convention); masks are compressed RLE from pycocotools.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils

DEFAULT_MAX_DETS = 300  # LVIS rule: at most 300 detections per image, across all categories
MASK_THRESHOLD = 0.5  # torchvision's convention for pasted mask probabilities


def _numpy(x) -> np.ndarray:
    """A numpy view of a numpy array, a list or a (CPU or GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def encode_masks(masks, threshold: float = MASK_THRESHOLD) -> list[dict]:
    """Compress N masks to RLE.

    masks: [N, H, W] or [N, 1, H, W] (torchvision's Mask R-CNN output), probabilities or 0/1;
    a pixel is in the mask when its value > threshold (bool masks are taken as they are).
    Returns N dicts {"size": [H, W], "counts": str} (counts decoded so json can hold them).
    """
    m = _numpy(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ValueError(f"masks must be [N, H, W] or [N, 1, H, W], got shape {tuple(m.shape)}")
    binary = m if m.dtype == bool else m > threshold
    # pycocotools wants [H, W, N] uint8 in Fortran order
    rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def detections_to_results(
    image_id: int,
    boxes,
    scores,
    labels,
    label_to_category: Mapping[int, int] | Sequence[int],
    masks=None,
    mask_threshold: float = MASK_THRESHOLD,
) -> list[dict]:
    """The LVIS results records of one image.

    boxes:  [N, 4] absolute xyxy.
    scores: [N].
    labels: [N] contiguous labels 0..C-1.
    label_to_category: label -> LVIS category id (a dict, or a sequence indexed by label).
    masks:  optional [N, H, W] or [N, 1, H, W] probabilities or binary masks; when given every
            record also gets a "segmentation" RLE (its "bbox" stays the box, as detectron2 and
            mmdet write LVIS segm results).
    Returns N records in the input order. Raises ValueError on mismatched shapes, an unknown
    label or a non-finite score or box.
    """
    b = _numpy(boxes).astype(np.float64).reshape(-1, 4)
    s = _numpy(scores).astype(np.float64).reshape(-1)
    lab = _numpy(labels).astype(np.int64).reshape(-1)
    n = len(s)
    if len(b) != n or len(lab) != n:
        raise ValueError(f"boxes {len(b)}, scores {n} and labels {len(lab)} must have the same length")
    if not (np.isfinite(s).all() and np.isfinite(b).all()):
        raise ValueError(f"image {image_id}: scores and boxes must be finite (NaN or inf found)")
    try:
        cats = [int(label_to_category[int(k)]) for k in lab]
    except (KeyError, IndexError) as err:
        raise ValueError(f"image {image_id}: label {err} has no category id") from None
    records = []
    for i in range(n):
        x1, y1, x2, y2 = (float(v) for v in b[i])
        rec = {
            "image_id": int(image_id),
            "category_id": cats[i],
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(s[i]),
        }
        records.append(rec)
    return records if masks is None else with_segmentation(records, masks, mask_threshold, image_id)


def with_segmentation(records: Sequence[dict], masks, mask_threshold: float = MASK_THRESHOLD,
                      image_id: int | None = None) -> list[dict]:
    """Copies of one image's `records` (detections_to_results), each with the "segmentation" RLE of its
    mask: masks [N, H, W] or [N, 1, H, W], in the records' order. ValueError when N differs."""
    rles = encode_masks(masks, mask_threshold) if len(records) else []
    if len(rles) != len(records):
        where = image_id if image_id is not None else (records[0]["image_id"] if records else "?")
        raise ValueError(f"image {where}: {len(rles)} masks for {len(records)} detections")
    return [{**r, "segmentation": rle} for r, rle in zip(records, rles)]


def top_k_per_image(results: Iterable[dict], k: int = DEFAULT_MAX_DETS) -> list[dict]:
    """Keep at most k records per image, the highest scores, across all categories (LVIS rule).

    Same cut and same order as lvis-api's ``LVISResults.limit_dets_per_image``: records grouped by
    image in order of first appearance; an image with more than k records is sorted by score
    (stable, descending) and cut, an image with at most k keeps its order. Equal order matters:
    ties between equal scores are broken by position in both evaluators.
    k < 0 keeps everything (lvis-api's convention).
    """
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    if k < 0:
        return [r for recs in by_image.values() for r in recs]
    out = []
    for recs in by_image.values():
        if len(recs) > k:
            recs = sorted(recs, key=lambda r: r["score"], reverse=True)[:k]
        out.extend(recs)
    return out


def _finite_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_results(results: Sequence[dict], image_ids: Iterable[int], category_ids: Iterable[int],
                  iou_type: str = "bbox") -> None:
    """Raise ValueError, naming the first bad record, unless every record can be evaluated.

    Checks: the record is a dict with image_id, category_id, score and (bbox) a 4-number "bbox" /
    (segm) an RLE "segmentation"; image and category ids exist in the ground truth; score and box
    are finite numbers, box width and height >= 0; segm records all have a bbox or none has.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    images, cats = set(image_ids), set(category_ids)
    geometry = "bbox" if iou_type == "bbox" else "segmentation"
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise ValueError(f"result {i} is a {type(r).__name__}, not a dict")
        missing = {"image_id", "category_id", "score", geometry} - r.keys()
        if missing:
            raise ValueError(f"result {i} lacks {sorted(missing)}")
        if r["image_id"] not in images:
            raise ValueError(f"result {i}: image_id {r['image_id']} is not in the ground truth")
        if r["category_id"] not in cats:
            raise ValueError(f"result {i}: category_id {r['category_id']} is not in the ground truth")
        score = r["score"]
        if not _finite_number(score):
            raise ValueError(f"result {i}: score {score!r} is not a finite number")
        if "bbox" in r:
            box = r["bbox"]
            if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(map(_finite_number, box)):
                raise ValueError(f"result {i}: bbox {box!r} is not 4 finite numbers [x, y, w, h]")
            if box[2] < 0 or box[3] < 0:
                raise ValueError(f"result {i}: bbox {box!r} has a negative width or height")
        if iou_type == "segm":
            if ("bbox" in r) != ("bbox" in results[0]):
                # both libraries decide from the first record whether areas come from boxes or masks
                raise ValueError(f"result {i}: either every segm record has a bbox or none has")
            seg = r["segmentation"]
            if not (isinstance(seg, dict) and "size" in seg and "counts" in seg):
                raise ValueError(f"result {i}: segmentation must be an RLE dict with 'size' and 'counts'")


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write obj as json to path atomically (a temporary file in the same folder, then a rename):
    a reader never sees half a file and a crash leaves any previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(obj))  # json.dump streams through the pure-Python encoder: ~5x slower
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_results_json(path: str | os.PathLike, results: Sequence[dict]) -> Path:
    """Write an LVIS results file (a json list of records) atomically; returns the path."""
    return write_json_atomic(path, list(results))


def read_results_json(path: str | os.PathLike) -> list[dict]:
    """Read an LVIS results file (a json list of records)."""
    with open(path) as f:
        results = json.load(f)
    if not isinstance(results, list):
        raise ValueError(f"{path}: an LVIS results file holds a json list, found {type(results).__name__}")
    return results


def gt_and_results(gt_json: str | os.PathLike | Mapping, results: Sequence[dict] | str | os.PathLike
                   ) -> tuple[Mapping, Sequence[dict]]:
    """The ground-truth dataset (a loaded dict, or read from its path) and the detections (a list, or
    read with `read_results_json`), for analyses that accept either form."""
    if not isinstance(gt_json, Mapping):
        with open(gt_json) as f:
            gt_json = json.load(f)
    if isinstance(results, (str, os.PathLike)):
        results = read_results_json(results)
    return gt_json, results

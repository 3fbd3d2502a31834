"""LVIS evaluation, following the protocol step by step.

1. Ground truth: an LVIS-format json (images carry ``neg_category_ids`` and
   ``not_exhaustive_category_ids``; categories carry ``frequency`` r/c/f).
2. Results: LVIS records (see ``rog.evaluation.results``), checked against the ground truth.
3. At most ``max_dets`` results per image, the highest scores, across all categories (LVIS: 300).
4. Federated matching: a detection of category c on image i is evaluated only if c is annotated on
   i (positive) or listed in i's ``neg_category_ids``; unmatched detections of a category in i's
   ``not_exhaustive_category_ids`` are ignored.
5. COCO-style matching at IoU 0.50:0.05:0.95, 101-point interpolated precision, per category and
   area range, then averages: AP, AP50, AP75, APs/APm/APl (area < 32², < 96², rest), APr/APc/APf
   (categories by ``frequency``); AR, recall averaged over IoU thresholds and categories with at
   most ``max_dets`` results per image (lvis-api's AR@300 for the default).

Two backends compute steps 4-5:

- ``"lvis"``: lvis-api's ``LVISEval`` (the reference; pure Python, slow on big sets).
- ``"fast"``: faster-coco-eval's ``COCOeval_faster(..., lvis_style=True)`` (C++). Its ``maxDets``
  caps detections per image *per category* (COCO rule), not per image, so step 3 is done here
  first, with lvis-api's own order; its 1.8.0 release also crashes on segm when an image without
  annotations gets detections that step 4 drops, so those are dropped here before it sees them
  (this changes no number). With both, tests/test_evaluation_backends.py shows it equals lvis-api
  (within 1e-9; 2e-16 observed) on random and on realistic detections, bbox and segm, which is
  why it is the default.

Empty results (after the checks) are evaluated as a detector that found nothing: AP 0 for every
metric whose categories / area range have ground truth, -1 where they have none (lvis-api's value for
"no ground truth"). lvis-api cannot load an empty list, so one placeholder detection with an empty
box / mask (IoU 0 with everything, hence no true positive) stands in; with no true positive every
precision is 0 whatever the false positives, so the numbers are those of no detection at all.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rog.evaluation.results import DEFAULT_MAX_DETS, check_results, read_results_json, top_k_per_image

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR")
IOU_TYPES = ("bbox", "segm")
BACKENDS = ("lvis", "fast")
DEFAULT_BACKEND = "fast"

# faster-coco-eval's stats_as_dict key for each of our metric names
_FAST_KEYS = {"AP": "AP_all", "AP50": "AP_50", "AP75": "AP_75", "APs": "AP_small", "APm": "AP_medium",
              "APl": "AP_large", "APr": "APr", "APc": "APc", "APf": "APf", "AR": "AR_all"}


class GroundTruth:
    """An LVIS-format ground truth json, read and checked once; each backend's object built on first use.

    image_ids: sorted image ids; category_ids: sorted category ids (the column order of
    ``Evaluation.precision``); frequency: category id -> 'r' | 'c' | 'f'.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        with open(self.path) as f:
            dataset = json.load(f)
        _check_ground_truth(dataset, self.path)
        self.image_ids = sorted(img["id"] for img in dataset["images"])
        self.category_ids = sorted(cat["id"] for cat in dataset["categories"])
        self.frequency = {cat["id"]: cat["frequency"] for cat in dataset["categories"]}
        self.image_size = {img["id"]: (img["height"], img["width"]) for img in dataset["images"]}
        # categories a detection may have on each image and still be evaluated (protocol step 4)
        self.evaluable = {img["id"]: set(img["neg_category_ids"]) for img in dataset["images"]}
        for ann in dataset["annotations"]:
            self.evaluable[ann["image_id"]].add(ann["category_id"])
        self._lvis = None
        self._coco = None

    @property
    def lvis(self):
        """lvis-api's LVIS object (lvis-api only reads from a path)."""
        if self._lvis is None:
            from rog.evaluation.lvis_compat import LVIS

            self._lvis = LVIS(self.path)
        return self._lvis

    @property
    def coco(self):
        """faster-coco-eval's COCO object."""
        if self._coco is None:
            from faster_coco_eval import COCO

            self._coco = COCO(self.path)
        return self._coco


def _check_ground_truth(dataset, path: str) -> None:
    if not isinstance(dataset, dict) or not {"images", "annotations", "categories"} <= dataset.keys():
        raise ValueError(f"{path}: not an LVIS ground truth (needs images, annotations, categories)")
    for img in dataset["images"]:
        missing = {"id", "height", "width", "neg_category_ids", "not_exhaustive_category_ids"} - img.keys()
        if missing:
            raise ValueError(f"{path}: image {img.get('id')} lacks {sorted(missing)}")
    for cat in dataset["categories"]:
        if cat.get("frequency") not in ("r", "c", "f"):
            raise ValueError(f"{path}: category {cat.get('id')} needs frequency 'r', 'c' or 'f'")
    images = {img["id"] for img in dataset["images"]}
    cats = {cat["id"] for cat in dataset["categories"]}
    for ann in dataset["annotations"]:
        if ann.get("image_id") not in images or ann.get("category_id") not in cats:
            raise ValueError(f"{path}: annotation {ann.get('id')} refers to an unknown image or category")


@dataclass
class Evaluation:
    """One evaluation's numbers.

    metrics:   METRICS name -> value in [0, 1], or -1 where no ground truth exists.
    precision: [T=10, R=101, C, A=4] interpolated precision at IoU 0.50:0.05:0.95, recall
               0:0.01:1, category (GroundTruth.category_ids order), area (all, small, medium,
               large); -1 for a category without ground truth.
    """

    metrics: dict[str, float]
    precision: np.ndarray
    category_ids: list[int]
    iou_type: str
    max_dets: int
    backend: str
    num_results: int = field(default=0)


def evaluate(gt_json_path, results, iou_type: str = "bbox", max_dets: int = DEFAULT_MAX_DETS,
             backend: str = DEFAULT_BACKEND) -> dict[str, float]:
    """LVIS metrics of results against a ground truth.

    gt_json_path: path to the LVIS-format ground truth json (or a GroundTruth already loaded).
    results:      list of LVIS records, or the path to a results json.
    iou_type:     "bbox" or "segm" (segm records need an RLE "segmentation").
    max_dets:     at most this many results per image, highest scores first (LVIS: 300).
    backend:      "lvis" (lvis-api, the reference) or "fast" (faster-coco-eval, same numbers).
    Returns {name: value} for the names in METRICS (AP, AP50, AP75, APs, APm, APl, APr, APc, APf,
    AR); -1 where no ground truth exists for that metric. Empty results give 0 (module docstring).
    Raises ValueError on bad input (unknown image or category id, non-finite score or box, ...).
    """
    return evaluate_detailed(gt_json_path, results, iou_type, max_dets, backend).metrics


def evaluate_detailed(gt, results, iou_type: str = "bbox", max_dets: int = DEFAULT_MAX_DETS,
                      backend: str = DEFAULT_BACKEND, check: bool = True) -> Evaluation:
    """Like ``evaluate`` but also returns the precision array (see Evaluation).

    check=False skips ``check_results``, for a caller that already checked these very records.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ValueError(f"max_dets must be a positive int, got {max_dets!r}")
    if not isinstance(gt, GroundTruth):
        gt = GroundTruth(gt)
    if isinstance(results, (str, os.PathLike)):
        results = read_results_json(results)
    if check:
        check_results(results, gt.image_ids, gt.category_ids, iou_type)

    # step 3, on copies: both libraries write keys (id, area, ...) into the records they get
    kept = [dict(r) for r in top_k_per_image(results, max_dets)]
    num_results = len(kept)
    if not kept:
        kept = [_placeholder(gt, iou_type)]
    run = _run_lvis_api if backend == "lvis" else _run_fast
    metrics, precision = run(gt, kept, iou_type, max_dets)
    return Evaluation(metrics=metrics, precision=precision, category_ids=list(gt.category_ids),
                      iou_type=iou_type, max_dets=max_dets, backend=backend, num_results=num_results)


def _placeholder(gt: GroundTruth, iou_type: str) -> dict:
    """A detection that matches nothing: empty box, and for segm an empty mask."""
    image_id = gt.image_ids[0]
    rec = {"image_id": image_id, "category_id": gt.category_ids[0], "bbox": [0.0, 0.0, 0.0, 0.0],
           "score": 1e-12}
    if iou_type == "segm":
        from rog.evaluation.results import encode_masks

        h, w = gt.image_size[image_id]
        rec["segmentation"] = encode_masks(np.zeros((1, h, w), dtype=bool))[0]
    return rec


def _run_lvis_api(gt: GroundTruth, results: list[dict], iou_type: str, max_dets: int):
    from rog.evaluation.lvis_compat import LVISEval, LVISResults

    with warnings.catch_warnings():
        # lvis 0.5.3 calls the deprecated logging.Logger.warn when given a list
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="lvis")
        dt = LVISResults(gt.lvis, results, max_dets=max_dets)
        ev = LVISEval(gt.lvis, dt, iou_type=iou_type)
        ev.params.max_dets = max_dets
        ev.run()
    metrics = {name: float(ev.results[name if name != "AR" else f"AR@{max_dets}"]) for name in METRICS}
    return metrics, np.asarray(ev.eval["precision"], dtype=np.float64)


def _run_fast(gt: GroundTruth, results: list[dict], iou_type: str, max_dets: int):
    from faster_coco_eval import COCOeval_faster

    # protocol step 4 done here too (see module docstring: faster-coco-eval 1.8.0 segm crash)
    results = [r for r in results if r["category_id"] in gt.evaluable[r["image_id"]]]
    dt = gt.coco.loadRes(results)
    ev = COCOeval_faster(gt.coco, dt, iou_type, lvis_style=True, print_function=_quiet)
    ev.params.maxDets = [max_dets]  # per image per category: never binding after the per-image cut
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = ev.stats_as_dict
    metrics = {name: float(stats[key]) for name, key in _FAST_KEYS.items()}
    precision = np.asarray(ev.eval["precision"], dtype=np.float64)[..., -1]  # [T, R, C, A, M=1] -> [T, R, C, A]
    return metrics, precision


def _quiet(*args, **kwargs) -> None:
    pass


def ground_truth(path: str | os.PathLike | GroundTruth) -> GroundTruth:
    """Load (and check) a ground truth once, to evaluate several results against it."""
    return path if isinstance(path, GroundTruth) else GroundTruth(Path(path))

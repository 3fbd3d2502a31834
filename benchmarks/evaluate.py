"""lvis-api vs the fast path (faster-coco-eval, LVIS mode) on one synthetic LVIS-format set.

    python benchmarks/evaluate.py [--images 300] [--categories 100] [--seed 0]

Prints, for bbox and segm, the seconds each backend takes (ground truth json load included, as
``evaluate(path, ...)`` does it; then with the ground truth already loaded; best of --repeat runs)
and the largest absolute difference between their metrics and precision arrays. Both backends run
in this one process on the same results.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import rog.evaluation.lvis_compat  # noqa: F401  (import lvis, cv2, matplotlib outside the timings)
import faster_coco_eval  # noqa: F401
from rog.evaluation.lvis_eval import METRICS, evaluate_detailed, ground_truth
from rog.evaluation.synthetic import synthetic_detections, synthetic_lvis


def timed(fn, repeat: int):
    """fn's result and its best wall time over repeat runs (the machine is shared: best is least noisy)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--categories", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per timing")
    args = ap.parse_args()

    dataset = synthetic_lvis(args.images, args.categories, seed=args.seed)
    dets = synthetic_detections(dataset, per_gt=3, false_positives=6, seed=args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        gt_path = Path(tmp) / "gt.json"
        gt_path.write_text(json.dumps(dataset))
        print(f"{len(dataset['images'])} images, {len(dataset['categories'])} categories, "
              f"{len(dataset['annotations'])} annotations, {len(dets)} detections "
              f"(max {max(np.bincount([d['image_id'] for d in dets]))} per image), max_dets 300")
        print(f"{'iou':5} {'backend':8} {'load+eval s':>12} {'eval s':>8} {'AP':>8} {'APr':>8} {'APc':>8} {'APf':>8}")
        worst = 0.0
        for iou_type in ("bbox", "segm"):
            runs = {}
            for backend in ("lvis", "fast"):
                _, total = timed(lambda: evaluate_detailed(str(gt_path), dets, iou_type, 300, backend), args.repeat)
                gt = ground_truth(gt_path)
                _ = gt.lvis if backend == "lvis" else gt.coco  # load outside the timing
                ev, alone = timed(lambda: evaluate_detailed(gt, dets, iou_type, 300, backend), args.repeat)
                runs[backend] = ev
                m = ev.metrics
                print(f"{iou_type:5} {backend:8} {total:12.3f} {alone:8.3f} "
                      f"{m['AP']:8.4f} {m['APr']:8.4f} {m['APc']:8.4f} {m['APf']:8.4f}")
            ref, fast = runs["lvis"], runs["fast"]
            diff = max(abs(ref.metrics[k] - fast.metrics[k]) for k in METRICS)
            pdiff = float(np.abs(ref.precision - fast.precision).max())
            worst = max(worst, diff, pdiff)
            print(f"{iou_type:5} largest difference: metrics {diff:.3g}, precision array {pdiff:.3g}")
        print(f"largest metric difference over bbox and segm: {worst:.3g}")


if __name__ == "__main__":
    main()

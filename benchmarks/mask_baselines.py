"""Segm AP without a trained mask head: the target/paste round trip, and the per-class mean shape.

    python benchmarks/mask_baselines.py [--profile default] [--root out/lt_glyphs] [--run RUN_DIR ...]

Round trip: each val ground-truth mask, cropped to its own box as the mask head's 28 x 28 training
target and pasted back into that box (rog.models.masks), evaluated with the project's evaluator; what
the convention alone loses. With --run (a `rog train` folder whose `eval/` holds `rog evaluate`'s
results_bbox.json and metrics.json): the mean-shape baseline, each of the run's detections given its
class's mean training mask, printed beside the run's own segm AP. Also: the paste's speed against
torchvision's one-mask-at-a-time paste (its own convention; a speed reference only).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from rog.config import resolve_run
from rog.data.build import build_dataset, dataset_paths
from rog.evaluation.mask_baselines import mean_shape_results, mean_shapes, round_trip_results
from rog.evaluation.metrics import evaluate_all
from rog.evaluation.results import read_results_json

ROWS = ("AP", "AP50", "AP75", "APr", "APc", "APf")


def segm_metrics(dataset, records, params) -> dict:
    """evaluate_all's segm metrics (boxes of the same records as bbox results) at the profile's K."""
    ev = params["evaluate"]
    bbox = [{k: v for k, v in r.items() if k != "segmentation"} for r in records]
    train_json, _ = dataset_paths(params["dataset"], "train")
    out = evaluate_all(dataset.json_path, bbox, records, max_dets_list=[int(ev["max_dets"])],
                       max_dets=int(ev["max_dets"]), train_image_counts=train_json, backend=ev["backend"])
    return out["segm"]["metrics"]


def fmt(metrics: dict) -> str:
    return "  ".join(f"{k} {100 * metrics[k]:5.1f}" for k in ROWS)


def paste_speed(size: int = 128, masks: int = 300, repeat: int = 5) -> str:
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    from rog.models.masks import paste_masks

    g = torch.Generator().manual_seed(0)
    probs = torch.rand(masks, 1, 28, 28, generator=g)
    xy = torch.rand(masks, 2, generator=g) * size
    boxes = torch.cat([xy, xy + torch.rand(masks, 2, generator=g) * size * 0.6 + 0.01], 1).clamp(0, size)
    times = {}
    for name, fn in (("ours", paste_masks), ("torchvision", paste_masks_in_image)):
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn(probs, boxes, (size, size))
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    return (f"paste, {masks} masks into {size}x{size}, 1 thread: ours {1000 * times['ours']:.1f} ms, "
            f"torchvision {1000 * times['torchvision']:.1f} ms ({times['torchvision'] / times['ours']:.1f}x)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--root", default=None, help="dataset root (default: the profile's dataset.root)")
    parser.add_argument("--run", nargs="*", default=[], help="run folders to compare with the mean shape")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    overrides = [f"dataset.root={args.root}"] if args.root else []
    params = resolve_run("params.yaml", args.profile, overrides=overrides)
    val = build_dataset(params["dataset"], "val", train=False)
    print(f"{val.json_path}: {len(val)} images")
    print(f"round trip (GT -> 28x28 target -> paste)  {fmt(segm_metrics(val, round_trip_results(val), params))}")
    if args.run:
        train = build_dataset(dict(params["dataset"], cache_images=False), "train", train=False)
        shapes = mean_shapes(train)
        for run in map(Path, args.run):
            detections = read_results_json(run / "eval" / "results_bbox.json")
            model = json.loads((run / "eval" / "metrics.json").read_text())
            baseline = segm_metrics(val, mean_shape_results(shapes, detections, val), params)
            print(f"{run.name}: model segm     {fmt(model['segm']['metrics'])}")
            print(f"{run.name}: mean shape     {fmt(baseline)}   "
                  f"(model / mean shape AP: {model['segm']['metrics']['AP'] / max(baseline['AP'], 1e-9):.2f}x; "
                  f"model box AP {100 * model['bbox']['metrics']['AP']:.1f})")
    print(paste_speed())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

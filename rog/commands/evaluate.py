"""`python -m rog evaluate --checkpoint FILE --out DIR [--profile/--experiment] [--set KEY=VALUE ...]
[--k K ...] [--boxes-only]`

Runs the checkpoint's detector on the evaluation split and writes DIR/results_bbox.json,
DIR/results_segm.json (LVIS results format; empty for a Faster R-CNN or --boxes-only),
DIR/metrics.json (rog.evaluation.metrics.evaluate_all), DIR/timing.json (eval_seconds,
curve_seconds), DIR/lookalike.json (rog.evaluation.lookalike: what the detector makes of each rare
object) and DIR/detections.json (rog.evaluation.samples: the top detections of four images, drawn by
the report). With evaluate.curve the checkpoint's run folder's kept checkpoints are evaluated too
(rog.engine.curve) -> DIR/curve.json.

The params are the checkpoint's own unless --params, --profile or --experiment name others (then
rog.config.resolve_run, as `rog train`); --set applies on top either way. A post-hoc entry's name as
--experiment evaluates with its NorCal gamma (evaluate.norcal_gamma). --k 10 100 3000 keeps max(K)
detections per image (a mask for each: model.test.masks_per_img null) and reports AP at each K;
--boxes-only skips the mask branch (evaluate.masks: false): box AP at budgets where pasting thousands
of masks per image would take hours.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rog.commands import add_params_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `rog train`")
    parser.add_argument("--out", required=True, help="folder for results_*.json and metrics.json")
    add_params_arguments(parser, profile_help="profile in params.yaml (default: the checkpoint's params)",
                         example="dataset.root=out/lt_glyphs")
    parser.add_argument("--k", type=int, nargs="+", default=None, metavar="K",
                        help="per-image detection budgets: AP at each (model.test.detections_per_img = max K)")
    parser.add_argument("--boxes-only", action="store_true", help="no masks (evaluate.masks: false)")


def option_overrides(args: argparse.Namespace) -> list[str]:
    """--k and --boxes-only as --set overrides."""
    out = []
    if args.k:
        ks = sorted({int(k) for k in args.k})
        if ks[0] < 1:
            raise ValueError(f"--k: budgets must be >= 1, got {ks[0]}")
        out += [f"model.test.detections_per_img={ks[-1]}", "model.test.masks_per_img=null",
                f"evaluate.max_dets={ks[-1]}", f"evaluate.max_dets_sweep={ks}"]
    if args.boxes_only:
        out.append("evaluate.masks=false")
    return out


def evaluation_params(args: argparse.Namespace, checkpoint_params: dict) -> dict:
    """resolve_run of the arguments when they name params, else the checkpoint's params; then --set,
    --k and --boxes-only."""
    from rog.config import apply_overrides, resolve_run

    overrides = list(args.overrides) + option_overrides(args)
    if args.params or args.profile or args.experiment:
        return resolve_run(args.params or "params.yaml", args.profile, args.experiment, overrides)
    return apply_overrides(checkpoint_params, overrides)  # checkpoint.load filled the keys it predates


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError
    from rog.data.lvis_dataset import ImageReadError, LVISFormatError
    from rog.engine import checkpoint as ckpt
    from rog.engine.curve import learning_curve, write_curve
    from rog.engine.inference import evaluate_checkpoint
    from rog.evaluation.lookalike import dataset_lookalikes

    out = Path(args.out)
    try:
        state = ckpt.load(args.checkpoint)
        params = evaluation_params(args, state["params"])
        split, image_root = read_split(params)
        lookalikes = dataset_lookalikes(params["dataset"], split["categories"]) if split else ({}, "")  # fonts fail now
        start = time.perf_counter()
        metrics = evaluate_checkpoint(args.checkpoint, out, params, progress=not args.no_progress)
        write_analyses(out, params, split, image_root, lookalikes)
        timing = {"eval_seconds": time.perf_counter() - start, "curve_seconds": 0.0}
        if params["evaluate"].get("curve"):
            start = time.perf_counter()
            curve = learning_curve(Path(args.checkpoint).parent, params, final_metrics=metrics,
                                   progress=not args.no_progress)
            write_curve(out / "curve.json", curve)
            timing["curve_seconds"] = time.perf_counter() - start
    except (ParamsError, ckpt.CheckpointError, LVISFormatError, ImageReadError, FileNotFoundError,
            ValueError) as err:
        print(f"rog evaluate: {err}", file=sys.stderr)
        return 2
    (out / "timing.json").write_text(json.dumps(timing) + "\n")
    summary = {t: {k: round(v, 4) for k, v in metrics[t]["metrics"].items()} for t in ("bbox", "segm")
               if t in metrics}
    print(json.dumps(summary))
    if args.k:
        print(budget_markdown(metrics), end="")
    return 0


def read_split(params: dict) -> tuple[dict | None, Path]:
    """(the evaluation split's json, read once for the analyses; None when it is unreadable or has no
    categories: the evaluation itself then names what is wrong with the file), its image root."""
    from rog.data.build import dataset_paths

    json_path, image_root = dataset_paths(params["dataset"], params["evaluate"]["split"])
    try:
        with open(json_path) as f:
            split = json.load(f)
    except (OSError, ValueError):
        return None, image_root
    return (split if isinstance(split, dict) and isinstance(split.get("categories"), list) else None), image_root


def write_analyses(out: Path, params: dict, dataset: dict, image_root: Path, lookalikes: tuple[dict, str]) -> None:
    """OUT/lookalike.json and OUT/detections.json from the split's json (`dataset`) and OUT/results_bbox.json
    (written by the evaluation)."""
    from rog.evaluation.lookalike import lookalike_analysis, write_lookalike_json
    from rog.evaluation.results import read_results_json
    from rog.evaluation.samples import detection_sample, write_detection_sample

    results = read_results_json(out / "results_bbox.json")
    pairs, definition = lookalikes
    write_lookalike_json(out / "lookalike.json", lookalike_analysis(
        dataset, results, pairs, max_dets=int(params["evaluate"]["max_dets"]), definition=definition))
    sample = detection_sample(dataset, results)
    sample["image_root"] = str(image_root)
    write_detection_sample(out / "detections.json", sample)


def budget_markdown(metrics: dict) -> str:
    """One row per (IoU type, K) of the max-detections sweep: AP, APr, APc, APf in percent."""
    names = ("AP", "APr", "APc", "APf")
    lines = ["| type | K | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for iou in ("bbox", "segm"):
        for k, entry in sorted((metrics.get(iou) or {}).get("max_dets_sweep", {}).items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {iou} | {k} | " + " | ".join(f"{100 * entry['metrics'][n]:.1f}" for n in names) + " |")
    return "\n".join(lines) + "\n"

"""`python -m rog evaluate --checkpoint FILE --out DIR [--profile/--experiment/--params] [--set k=v ...]`

Runs the checkpoint's detector on the evaluation split and writes DIR/results_bbox.json,
DIR/results_segm.json (LVIS results format; an empty list for a Faster R-CNN) and DIR/metrics.json
(rog.evaluation.metrics.evaluate_all). The params are the checkpoint's own unless --params, --profile
or --experiment name others; --set applies on top either way (e.g. --set dataset.root=...).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rog.commands.train import add_common_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `rog train`")
    parser.add_argument("--out", required=True, help="folder for results_*.json and metrics.json")
    add_common_arguments(parser, profile_default=None)


def evaluation_params(args: argparse.Namespace, checkpoint_params: dict) -> dict:
    from rog.config import load_params, merge, parse_override

    if args.params or args.profile or args.experiment:
        return load_params(args.params or "params.yaml", args.profile, args.experiment, args.overrides)
    params = checkpoint_params
    for text in args.overrides:
        params = merge(params, parse_override(text))
    return params


def evaluate_checkpoint(checkpoint_path, out_dir, params: dict | None = None, overrides=(), progress=False) -> dict:
    """Inference + evaluation of a checkpoint into out_dir; returns the metrics dict."""
    import torch

    from rog.data.build import build_dataset, dataset_paths
    from rog.engine import checkpoint as ckpt
    from rog.engine.distributed import local_device
    from rog.engine.inference import load_model, predict
    from rog.evaluation.metrics import evaluate_all, write_metrics_json
    from rog.evaluation.results import write_results_json

    state = ckpt.load(checkpoint_path)
    args = argparse.Namespace(params=None, profile=None, experiment=None, overrides=list(overrides))
    params = params if params is not None else evaluation_params(args, state["params"])
    ev = params["evaluate"]
    device = local_device(params["train"]["device"])
    if device.type == "cpu":
        torch.set_num_threads(int(params["train"]["threads"]))
    dataset = build_dataset(params["dataset"], ev["split"], train=False)
    model, _ = load_model(checkpoint_path, dataset.num_classes, device, params, state=state)
    bbox, segm = predict(model, dataset, int(ev["batch_size"]), device, progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_results_json(out / "results_bbox.json", bbox)
    write_results_json(out / "results_segm.json", segm)
    train_json, _ = dataset_paths(params["dataset"], "train")
    metrics = evaluate_all(dataset.json_path, bbox, segm if segm else None,
                           max_dets_list=ev["max_dets_sweep"], max_dets=int(ev["max_dets"]),
                           train_image_counts=train_json if train_json.is_file() else None,
                           backend=ev["backend"])
    metrics["checkpoint"] = {"path": str(checkpoint_path), "iteration": state["iteration"],
                             "params_hash": state.get("params_hash")}
    write_metrics_json(out / "metrics.json", metrics)
    return metrics


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError
    from rog.data.lvis_dataset import ImageReadError, LVISFormatError
    from rog.engine import checkpoint as ckpt

    try:
        state = ckpt.load(args.checkpoint)
        params = evaluation_params(args, state["params"])
        metrics = evaluate_checkpoint(args.checkpoint, args.out, params, progress=not args.no_progress)
    except (ParamsError, ckpt.CheckpointError, LVISFormatError, ImageReadError, FileNotFoundError,
            ValueError) as err:
        print(f"rog evaluate: {err}", file=sys.stderr)
        return 2
    summary = {t: {k: round(v, 4) for k, v in metrics[t]["metrics"].items()} for t in ("bbox", "segm")
               if t in metrics}
    print(json.dumps(summary))
    return 0

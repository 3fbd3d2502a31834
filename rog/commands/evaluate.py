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

from rog.commands.train import add_common_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `rog train`")
    parser.add_argument("--out", required=True, help="folder for results_*.json and metrics.json")
    add_common_arguments(parser, profile_default=None)


def evaluation_params(args: argparse.Namespace, checkpoint_params: dict) -> dict:
    from rog.config import load_params, merge, parse_override
    from rog.models.pretrained import resolve_weights

    if args.params or args.profile or args.experiment:
        params = load_params(args.params or "params.yaml", args.profile, args.experiment, args.overrides)
        return resolve_weights(params, args.profile)
    params = checkpoint_params
    for text in args.overrides:
        params = merge(params, parse_override(text))
    return params


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError
    from rog.data.lvis_dataset import ImageReadError, LVISFormatError
    from rog.engine import checkpoint as ckpt
    from rog.engine.inference import evaluate_checkpoint

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


def __getattr__(name: str):
    """`evaluate_checkpoint` lives in rog.engine.inference; re-exported lazily (keeps --help fast)."""
    if name == "evaluate_checkpoint":
        from rog.engine.inference import evaluate_checkpoint
        return evaluate_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

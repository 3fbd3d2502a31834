"""`python -m rog pretrain [--out DIR] [--params params.yaml] [--profile NAME] [--set key=value ...]`

Pretrains the tiny backbone's body on glyphs disjoint from LT-Glyphs' categories (the `pretrain`
section; rog.engine.pretrain) and writes DIR/backbone.pt and DIR/summary.json. The default DIR is what
model.backbone.weights 'pretrain' means: out/pipeline/<profile>/pretrain.
"""
from __future__ import annotations

import argparse
import json
import sys

from rog.commands.dataset import add_params_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="output folder (default: out/pipeline/<profile>/pretrain, what weights 'pretrain' reads)")
    add_params_arguments(parser, "pretrain.iterations=100")


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError, load_params
    from rog.data.snapshot import ensure_snapshot
    from rog.engine.pretrain import PretrainParamsError, pretrain
    from rog.models.pretrained import default_dir

    try:
        params = load_params(args.params, args.profile, None, args.overrides)
        if "pretrain" not in params:
            raise ParamsError(f"{args.params}: no 'pretrain' section")
        ensure_snapshot(params["dataset"]["glyphs"]["snapshot"])  # a fresh clone: dvc pull the fonts
        meta = pretrain(params, args.out or default_dir(args.profile), progress=not args.no_progress)
    except (ParamsError, PretrainParamsError, FileNotFoundError) as err:
        print(f"rog pretrain: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("num_classes", "train_accuracy", "val_accuracy", "seconds",
                                           "body_sha256")}))
    return 0

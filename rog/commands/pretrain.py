"""`python -m rog pretrain [--out DIR] [--profile NAME] [--set KEY=VALUE ...]`

Pretrains the profile's detector on glyphs disjoint from LT-Glyphs' categories (the `pretrain` section;
rog.engine.pretrain) and writes DIR/detector.pt and DIR/summary.json; the rendered set and the training
run (checkpoints: a killed pretraining resumes) go to DIR_work. The default DIR is what model.weights
'pretrain' means: out/pipeline/<profile>/pretrain.
"""
from __future__ import annotations

import argparse
import json
import sys

from rog.commands import add_params_arguments, resolve_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="output folder (default: out/pipeline/<profile>/pretrain, what weights 'pretrain' reads)")
    add_params_arguments(parser, experiment=False, example="pretrain.iterations=100")


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError, profile_name
    from rog.data.snapshot import ensure_snapshot
    from rog.engine.pretrain import PretrainParamsError, pretrain
    from rog.engine.registries import check_params
    from rog.models.pretrained import default_dir

    try:
        params = check_params(resolve_args(args))  # registry names too
        if "pretrain" not in params:
            raise ParamsError(f"{args.params or 'params.yaml'}: no 'pretrain' section")
        ensure_snapshot(params["dataset"]["glyphs"]["snapshot"])  # a fresh clone: dvc pull the fonts
        out = args.out or default_dir(profile_name(args.params or "params.yaml", args.profile))
        meta = pretrain(params, out, progress=not args.no_progress)
    except (ParamsError, PretrainParamsError, FileNotFoundError) as err:
        print(f"rog pretrain: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("num_classes", "chars", "final_losses", "seconds", "sha256")},
                     ensure_ascii=False))
    return 0

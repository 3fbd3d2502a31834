"""`python -m rog dataset [--out DIR] [--profile NAME] [--set KEY=VALUE ...]`

Renders LT-Glyphs (dataset.glyphs of the resolved params) into DIR: train.json, val.json (LVIS v1
format), the PNGs below train/ and val/, and stats.json (image, annotation and r/c/f category counts).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from rog.commands import add_params_arguments, resolve_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="output folder (default: dataset.root of the resolved params)")
    add_params_arguments(parser, experiment=False, example="dataset.glyphs.seed=1")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rog.config import ParamsError
    from rog.data.glyphs import GlyphParamsError, generate
    from rog.data.registry import DATASETS
    from rog.data.snapshot import ensure_snapshot

    try:
        params = resolve_args(args)
    except ParamsError as err:
        print(f"rog dataset: {err}", file=sys.stderr)
        return 2
    dataset = params["dataset"]
    if not DATASETS[dataset["name"]].rendered:
        rendered = ", ".join(name for name, spec in DATASETS.items() if spec.rendered)
        print(f"rog dataset: dataset.name is '{dataset['name']}'; only {rendered} is rendered "
              "(a real dataset is read from dataset.root as it is)", file=sys.stderr)
        return 2
    glyphs = dataset["glyphs"]
    out = args.out or dataset["root"]
    start = time.perf_counter()
    with tqdm(total=glyphs["num_train"] + glyphs["num_val"], unit="img", desc="LT-Glyphs",
              disable=args.no_progress) as bar:
        def progress(n: int) -> None:
            if bar.n + n > bar.total:  # extra validation images for rare categories
                bar.total = bar.n + n
            bar.update(n)

        try:
            ensure_snapshot(glyphs["snapshot"])  # a fresh clone: dvc pull from the in-repo remote
            stats = generate(glyphs, out, progress)
        except (GlyphParamsError, FileNotFoundError) as err:
            print(f"rog dataset: {err}", file=sys.stderr)
            return 2
    stats["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(stats))
    return 0

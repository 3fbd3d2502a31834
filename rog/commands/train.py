"""`python -m rog train --out DIR [--params params.yaml] [--profile NAME] [--experiment NAME] [--set k=v ...]`

Trains the detector of the resolved params on dataset.root's training split into DIR (see
rog.engine.trainer for the files). Started again on the same DIR it resumes from the last checkpoint;
a DIR holding another experiment's run is refused. Under `torchrun --nproc_per_node N` it trains with
N processes (DDP).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser, profile_default: str | None = "default") -> None:
    """--params, --profile, --experiment, --set, --no-progress (shared with `evaluate`)."""
    parser.add_argument("--params", default=None, help="params file (default: params.yaml)")
    parser.add_argument("--profile", default=profile_default,
                        help=f"profile in params.yaml (default: {profile_default})")
    parser.add_argument("--experiment", default=None, help="experiment in params.yaml's registry")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set train.iterations=100 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (created; resumed if it holds this run)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError, load_params
    from rog.data.lvis_dataset import ImageReadError, LVISFormatError
    from rog.engine import distributed
    from rog.engine.checkpoint import CheckpointError
    from rog.engine.rundir import RunDirError
    from rog.engine.trainer import train
    from rog.models.pretrained import resolve_weights

    rank = 0
    try:
        params = load_params(args.params or "params.yaml", args.profile, args.experiment, args.overrides)
        resolve_weights(params, args.profile)  # weights: pretrain -> out/pipeline/<profile>/pretrain/backbone.pt
        final = train(params, args.out, progress=not args.no_progress)
        rank = distributed.rank()
    except (ParamsError, RunDirError, CheckpointError, LVISFormatError, ImageReadError, FileNotFoundError,
            ValueError) as err:
        print(f"rog train: {err}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()
    if rank == 0:
        if final is None or not Path(final).is_file():  # never claim a file that is not there
            print(f"rog train: no final model was written in {args.out}", file=sys.stderr)
            return 2
        print(f"rog train: {final}")
    return 0

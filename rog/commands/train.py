"""`python -m rog train --out DIR [--profile NAME] [--experiment NAME] [--set KEY=VALUE ...]`

Trains the detector of the resolved params (rog.config.resolve_run) on dataset.root's training split
into DIR (see rog.engine.trainer for the files). Started again on the same DIR it resumes from the
last checkpoint; a DIR holding another experiment's run is refused. With train.processes N > 1 it must
run under `torchrun --nproc_per_node N` (DDP: gloo on CPUs, nccl on GPUs).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rog.commands import add_params_arguments, resolve_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (created; resumed if it holds this run)")
    add_params_arguments(parser)


def check_processes(params: dict) -> None:
    """ValueError unless the processes launched (torchrun's WORLD_SIZE, 1 without) are train.processes."""
    want = int(params["train"].get("processes", 1))
    have = int(os.environ.get("WORLD_SIZE", "1"))
    if want != have:
        raise ValueError(f"train.processes is {want} but {have} process(es) were launched; run "
                         f"`torchrun --nproc_per_node {want} -m rog train ...` or --set train.processes={have}")


def run(args: argparse.Namespace) -> int:
    from rog.config import ParamsError
    from rog.data.lvis_dataset import ImageReadError, LVISFormatError
    from rog.engine import distributed
    from rog.engine.checkpoint import CheckpointError
    from rog.engine.registries import check_params
    from rog.engine.rundir import RunDirError
    from rog.engine.trainer import train

    rank = 0
    try:
        params = check_params(resolve_args(args))  # registry names too
        check_processes(params)
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

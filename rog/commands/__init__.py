"""One module per `python -m rog` sub-command; each exposes `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse


def add_params_arguments(parser: argparse.ArgumentParser, experiment: bool = True,
                         profile_help: str = "profile in params.yaml (default: params.yaml's `profile`)",
                         example: str = "train.iterations=100") -> None:
    """--params, --profile, [--experiment], --set KEY=VALUE [KEY=VALUE ...] (repeatable), --no-progress:
    what rog.config.resolve_run takes."""
    parser.add_argument("--params", default=None, help="params file (default: params.yaml)")
    parser.add_argument("--profile", default=None, help=profile_help)
    if experiment:
        parser.add_argument("--experiment", default=None,
                            help="an entry of params.yaml's experiments (or posthoc) registry")
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=f"override parameters, e.g. --set {example} train.seed=1 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve_args(args: argparse.Namespace) -> dict:
    """rog.config.resolve_run of the parsed --params/--profile/--experiment/--set (types and ranges; the
    commands that build a model check registry names too: rog.engine.registries.check_params)."""
    from rog.config import resolve_run

    return resolve_run(args.params or "params.yaml", args.profile, getattr(args, "experiment", None), args.overrides)

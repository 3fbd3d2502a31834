"""`python -m rog <command> ...`: params, dataset, pretrain, train, evaluate, report.

Each command lives in `rog.commands.<name>` with `add_arguments(parser)` and `run(args) -> int`; modules
are imported only when their command runs, so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib

COMMANDS = {
    "params": "print the resolved params of a run (profile, experiment, --set) as YAML",
    "dataset": "render the LT-Glyphs dataset (LVIS v1 format)",
    "pretrain": "pretrain the detector on glyphs disjoint from LT-Glyphs' categories (our ImageNet)",
    "train": "train a detector from params.yaml",
    "evaluate": "run inference and LVIS evaluation for a checkpoint",
    "report": "dvc.yaml from the registry, tables and claims from results/, the pipeline's projected time",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"rog.commands.{name}").add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(importlib.import_module(f"rog.commands.{args.command}").run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

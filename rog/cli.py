"""`python -m rog <command> ...`: params, dataset, pretrain, train, evaluate, report.

Each command lives in `rog.commands.<name>` with `add_arguments(parser)` and `run(args) -> int`. Only the
module of the command that runs is imported (with every command's for `--help`): what a pipeline stage
running `python -m rog CMD` depends on is that command's code (rog.pipeline.imports).
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "params": "print the resolved params of a run (profile, experiment, --set) as YAML",
    "dataset": "render the LT-Glyphs dataset (LVIS v1 format)",
    "pretrain": "pretrain the detector on glyphs disjoint from LT-Glyphs' categories (our ImageNet)",
    "train": "train a detector from params.yaml",
    "evaluate": "run inference and LVIS evaluation for a checkpoint",
    "report": "dvc.yaml from the registry, tables and claims from results/, the pipeline's projected time",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with `only` the arguments of that one command (the others listed)."""
    parser = argparse.ArgumentParser(prog="python -m rog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(f"rog.commands.{name}").add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(importlib.import_module(f"rog.commands.{args.command}").run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

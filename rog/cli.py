"""`python -m rog <command> ...`: dataset, pretrain, train, evaluate, report.

Each command lives in `rog.commands.<name>` with `add_arguments(parser)` and `run(args) -> int`; modules
are imported only when their command runs, so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "dataset": "render the LT-Glyphs dataset (LVIS v1 format)",
    "pretrain": "pretrain the tiny backbone on glyphs disjoint from LT-Glyphs' categories",
    "train": "train a detector from params.yaml",
    "evaluate": "run inference and LVIS evaluation for a checkpoint",
    "report": "build tables and figures from metrics files",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = _command_module(name)
        if module is not None:
            module.add_arguments(command_parser)
    return parser


def _command_module(name: str):
    try:
        return importlib.import_module(f"rog.commands.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"rog.commands.{name}":
            return None  # command not built yet
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = _command_module(args.command)
    if module is None:
        print(f"rog: the '{args.command}' command is not available in this version", file=sys.stderr)
        return 2
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

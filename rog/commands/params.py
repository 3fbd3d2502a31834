"""`python -m rog params [--profile NAME] [--experiment NAME] [--set KEY=VALUE ...]`

Prints the resolved params of a run as YAML (rog.config.resolve_run: defaults <- profile <- experiment,
schedule.length applied <- overrides): exactly what `rog train` / `rog evaluate` and the pipeline's
stages use for the same names.
"""
from __future__ import annotations

import argparse
import sys

from rog.commands import add_params_arguments, resolve_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_arguments(parser)
    parser.add_argument("--section", action="append", default=[],
                        help="print only this section (dataset, model, train, evaluate, pretrain; repeatable)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from rog.config import ParamsError
    from rog.engine.registries import check_params

    try:
        params = check_params(resolve_args(args))  # registry names too
        unknown = [s for s in args.section if s not in params]
        if unknown:
            raise ParamsError(f"--section {unknown[0]}: not a section; valid: {', '.join(params)}")
    except ParamsError as err:
        print(f"rog params: {err}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in params.items() if not args.section or k in args.section}
    print(yaml.safe_dump(shown, sort_keys=False, width=120), end="")
    if "dataset" in shown:
        note = threshold_note(params["dataset"])
        if note:
            print(note)
    return 0


def threshold_note(dataset: dict) -> str | None:
    """A YAML comment with the repeat-factor threshold the sampler uses, when it is scaled (threshold_images)."""
    from rog.data.registry import dataset_spec
    from rog.data.sampler import scaled_threshold

    sampler = dataset["sampler"]
    if sampler["kind"] != "repeat_factor" or sampler.get("threshold_images") is None:
        return None
    if not dataset_spec(dataset["name"]).rendered:  # a rendered set's training images are known from params
        return (f"# dataset.sampler: t used = {sampler['repeat_threshold']} x {sampler['threshold_images']} / "
                "(the annotated training images, counted when training starts)")
    images = int(dataset["glyphs"]["num_train"])  # every LT-Glyphs training image holds glyphs
    used = scaled_threshold(sampler["repeat_threshold"], sampler["threshold_images"], images)
    return (f"# dataset.sampler: t used = {sampler['repeat_threshold']} x {sampler['threshold_images']} / "
            f"{images} training images = {used:.5f}")

"""Where the pipeline keeps things, for one profile: the bottom of the package (it imports nothing of rog),
so that config, the pipeline and the report agree on one layout without importing training code.

    out/pipeline/<profile>/dataset             the rendered LT-Glyphs dataset (the dataset stage)
    out/pipeline/<profile>/pretrain/detector.pt  the pretrained detector (the pretrain stage)
    out/pipeline/<profile>/runs/<name>/        a run's folder (checkpoints; rog.engine.rundir)
    results/experiments/<name>/                a run's results files (git)

params.yaml's model.weights may say PRETRAIN ('pretrain'): the pretrain stage's detector.pt of the profile
(`resolve_weights`, called by rog.config.resolve_run).
"""
from __future__ import annotations

from pathlib import Path

PIPELINE_DIR = "out/pipeline/{profile}"
DATASET_DIR = PIPELINE_DIR + "/dataset"
PRETRAIN_DIR = PIPELINE_DIR + "/pretrain"
RUNS_DIR = PIPELINE_DIR + "/runs"
RESULTS_DIR = "results/experiments"
FRESHNESS_FILE = "results/freshness.json"  # rog.pipeline.freshness writes it, the pages read it
PRETRAIN = "pretrain"
WEIGHTS_FILE = "detector.pt"
DEFAULT_PROFILE = "default"


def dataset_dir(profile: str | None) -> Path:
    return Path(DATASET_DIR.format(profile=profile or DEFAULT_PROFILE))


def pretrain_dir(profile: str | None) -> Path:
    return Path(PRETRAIN_DIR.format(profile=profile or DEFAULT_PROFILE))


def resolve_weights(params: dict, profile: str | None, path: str | Path | None = None) -> dict:
    """params with model.weights PRETRAIN replaced by `path` (default: the pretrain stage's output for
    `profile`); other values are left alone. Changes params in place and returns it."""
    model = params["model"]
    if model.get("weights") == PRETRAIN:
        model["weights"] = str(path if path is not None else pretrain_dir(profile) / WEIGHTS_FILE)
    return params

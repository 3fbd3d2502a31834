"""Learning curves: a run's kept checkpoints (train.keep_every) and its final model, evaluated on
params.evaluate.split at the main K only (no max-detections sweep).

    learning_curve(run_dir) -> [{iteration, bbox: {AP, AP50, APr, APc, APf}, segm: {...}}], by iteration

Values are fractions as in metrics.json (LVIS's -1 where a metric is undefined, e.g. APr without rare
ground truth); segm is absent for a Faster R-CNN. Each point is cached in RUN_DIR/curve/NAME.json
(NAME: the checkpoint's file stem) with what it was computed from (the run, the params, the evaluation
settings), so a rerun evaluates only checkpoints it has not seen. Lives in rog.engine because it is
built on rog.engine.inference (rog.evaluation stays free of models and checkpoints).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml
from tqdm import tqdm

from rog.engine import checkpoint, rundir

CURVE_KEYS = ("AP", "AP50", "APr", "APc", "APf")
CACHE_DIR = "curve"
FINAL = "model_final.pt"


def point(metrics: dict, iteration: int) -> dict:
    """One curve point from an evaluate_all / evaluate_checkpoint metrics dict (main K metrics)."""
    out: dict = {"iteration": int(iteration)}
    for iou in ("bbox", "segm"):
        if iou in metrics:
            out[iou] = {k: float(metrics[iou]["metrics"][k]) for k in CURVE_KEYS}
    return out


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoints a curve evaluates: the kept ones by iteration, then model_final.pt.

    FileNotFoundError naming the file when the run has no model_final.pt (not finished)."""
    final = Path(run_dir) / FINAL
    if not final.is_file():
        raise FileNotFoundError(f"{final}: no final model; a learning curve needs a finished run")
    return [path for _, path in checkpoint.kept_checkpoints(run_dir)] + [final]


def run_params(run_dir: str | Path) -> dict:
    """The resolved params a run folder was trained with (RUN_DIR/params.yaml)."""
    path = Path(run_dir) / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run folder (no params.yaml)")
    return checkpoint.upgraded_params(yaml.safe_load(path.read_text()))


def cache_key(run_dir: str | Path, params: dict) -> dict:
    """What a cached point depends on besides its checkpoint: the run (run.json's params hash), the
    model and data it is evaluated with, and the evaluation settings that change the numbers."""
    info = Path(run_dir) / "run.json"
    if not info.is_file():
        raise FileNotFoundError(f"{info}: not a run folder (no run.json)")
    ev = params["evaluate"]
    return {"run": json.loads(info.read_text()).get("params_hash"), "params": rundir.params_hash(params),
            "split": ev["split"], "max_dets": int(ev["max_dets"]), "backend": ev["backend"]}


def _read_cache(path: Path, key: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # a damaged cache entry is evaluated again
    return cached.get("point") if cached.get("key") == key else None


def _write_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def evaluate_point(path: Path, run_dir: Path, params: dict, key: dict, progress: bool = False) -> dict:
    """Evaluate one checkpoint at the main K (cached in RUN_DIR/curve/STEM.json); returns its point."""
    from rog.engine.inference import evaluate_checkpoint

    cache = run_dir / CACHE_DIR / f"{path.stem}.json"
    found = _read_cache(cache, key)
    if found is not None:
        return found
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent) as scratch:  # results json: large, not kept
        metrics = evaluate_checkpoint(path, scratch, params, progress=progress,
                                      max_dets_list=[int(params["evaluate"]["max_dets"])])
    found = point(metrics, metrics["checkpoint"]["iteration"])
    _write_atomic(cache, {"key": key, "point": found})
    return found


def learning_curve(run_dir: str | Path, params: dict | None = None, final_metrics: dict | None = None,
                   progress: bool = True) -> list[dict]:
    """Evaluate every kept checkpoint of a finished run and its final model; the points by iteration.

    params: resolved params to evaluate with (default: the run's params.yaml).
    final_metrics: model_final.pt's metrics when already computed (run_experiment's main evaluation):
    its point is taken from them instead of evaluating the final model again.
    """
    run_dir = Path(run_dir)
    params = params if params is not None else run_params(run_dir)
    paths = checkpoints(run_dir)
    key = cache_key(run_dir, params)
    points = {}
    for path in tqdm(paths, desc="learning curve", disable=not progress, dynamic_ncols=True):
        if path.name == FINAL and final_metrics is not None:
            found = point(final_metrics, final_metrics["checkpoint"]["iteration"])
        else:
            found = evaluate_point(path, run_dir, params, key)
        points[found["iteration"]] = found  # the final model wins over a kept copy of the same iteration
    return [points[i] for i in sorted(points)]


def write_curve(path: str | Path, points: list[dict]) -> Path:
    """Write a curve (the list learning_curve returns) as JSON."""
    path = Path(path)
    _write_atomic(path, points)
    return path

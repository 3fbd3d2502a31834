"""Freshness, decided once: whether each run in results/ was made with the params params.yaml gives now.
The `freshness` stage writes results/freshness.json; every page reads it (rog.report.regime) and resolves
nothing, so a page says the same on any machine, and re-runs when params.yaml or a run changes.

    python -m rog report freshness              # results/freshness.json

A run is `same` when its checkpoint's params hash (metrics.json's checkpoint.params_hash) equals
rog.engine.rundir.params_hash of what `rog train` would resolve for it now (its profile, the stage's
dataset root); `other` when they differ; `unknown` when no hash was recorded, when the params no longer
resolve (a run removed from the registry), or when params.yaml starts it from a pretrained detector that
is not on this machine (the hash reads its digest).
"""
from __future__ import annotations

import json
from pathlib import Path

from rog.paths import FRESHNESS_FILE, dataset_dir
from rog.pipeline.registry import metrics_path, run_names

STATES = ("same", "other", "unknown")


def run_freshness(params: dict, run: str, metrics: dict, root: str | Path = ".") -> dict:
    """{state, recorded, now, why} of one run with results (`metrics`: its metrics.json)."""
    from rog.config import resolve_run
    from rog.engine.rundir import params_hash

    recorded = (metrics.get("checkpoint") or {}).get("params_hash")
    profile = (metrics.get("run") or {}).get("profile") or params.get("profile")
    experiments = params.get("experiments") or {}
    source = run if run in experiments else ((params.get("posthoc") or {}).get(run) or {}).get("source")
    out = {"state": "unknown", "recorded": recorded, "now": None, "why": None}
    if not recorded:
        return {**out, "why": "no params hash recorded"}
    if source not in experiments:
        return {**out, "why": "not in the registry params.yaml holds now"}
    try:
        now = resolve_run(params, profile, source, [f"dataset.root={dataset_dir(profile)}"])
    except (ValueError, KeyError) as err:
        return {**out, "why": f"params.yaml no longer resolves it: {err}"}
    weights = now["model"].get("weights")
    if weights:  # the hash reads the pretrained detector's digest; a relative path is below `root`
        located = Path(weights) if Path(weights).is_absolute() else Path(root) / weights
        if not located.is_file():
            return {**out, "why": "the pretrained detector params.yaml starts it from is not on this machine"}
        now["model"]["weights"] = str(located)
    digest = params_hash(now)
    return {**out, "state": "same" if digest == recorded else "other", "now": digest}


def freshness(params: dict, root: str | Path = ".") -> dict[str, dict]:
    """{run: run_freshness} for every registry run with results under `root`, in registry order."""
    out = {}
    for run in run_names(params):
        path = metrics_path(run, root)
        if path.is_file():
            out[run] = run_freshness(params, run, json.loads(path.read_text()), root)
    return out


def write(params: dict, root: str | Path = ".") -> Path:
    """results/freshness.json under `root` (sorted, indented: it goes to git)."""
    path = Path(root) / FRESHNESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(freshness(params, root), indent=1, sort_keys=True) + "\n")
    return path

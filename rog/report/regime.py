"""Which regime a set of results comes from: whether each run was made with the params params.yaml gives
now. Data only; rog.report.limits says it in words.

    found = regime(params, root)                 # every run with results, or `runs=` a page's runs
"""
from __future__ import annotations

from pathlib import Path

from rog.paths import dataset_dir
from rog.pipeline.registry import run_names
from rog.report.results import load_metrics



def regime(params: dict, root: str | Path = ".", runs: list[str] | None = None) -> dict:
    """Whether results/ was made with the params params.yaml gives now.

    A run matches when the params hash of its checkpoint (metrics.json's checkpoint.params_hash) equals
    rog.engine.rundir.params_hash of what `rog train` would resolve for it now (its profile, the stage's
    dataset root). `runs`: the runs to check (default: the registry's). Returns {runs: [with results],
    same: [...], other: [...], unknown: [...]} (unknown: no hash recorded, a pretrained detector that today's
    params start from and this machine lacks (the hash reads its digest), or params that no longer
    resolve, e.g. a run removed from the registry).
    """
    from rog.config import resolve_run
    from rog.engine.rundir import params_hash

    out = {"runs": [], "same": [], "other": [], "unknown": []}
    experiments = params.get("experiments") or {}
    for run in run_names(params) if runs is None else runs:
        metrics = load_metrics(run, root)
        if metrics is None:
            continue
        out["runs"].append(run)
        recorded = (metrics.get("checkpoint") or {}).get("params_hash")
        profile = (metrics.get("run") or {}).get("profile") or params.get("profile")
        source = run if run in experiments else ((params.get("posthoc") or {}).get(run) or {}).get("source")
        if not recorded or source not in experiments:
            out["unknown"].append(run)
            continue
        try:
            now = resolve_run(params, profile, source, [f"dataset.root={dataset_dir(profile)}"])
            weights = now["model"].get("weights")
            if weights:  # the hash reads the pretrained detector's digest; a relative path is below `root`
                located = Path(weights) if Path(weights).is_absolute() else Path(root) / weights
                if not located.is_file():
                    out["unknown"].append(run)
                    continue
                now["model"]["weights"] = str(located)
            out["same" if params_hash(now) == recorded else "other"].append(run)
        except (ValueError, KeyError, OSError):
            out["unknown"].append(run)
    return out

"""Which regime a set of results comes from, as the `freshness` stage recorded it (results/freshness.json,
rog.pipeline.freshness). Data only; rog.report.limits says it in words.

    found = regime(params, root)                 # every run with results, or `runs=` a page's runs
"""
from __future__ import annotations

import json
from pathlib import Path

from rog.paths import FRESHNESS_FILE
from rog.pipeline.registry import run_names
from rog.report.results import load_metrics


def recorded_freshness(root: str | Path = ".") -> dict[str, dict]:
    """results/freshness.json under `root`; {} when the stage has not run."""
    path = Path(root) / FRESHNESS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def regime(params: dict, root: str | Path = ".", runs: list[str] | None = None) -> dict:
    """{runs: [with results], same: [...], other: [...], unknown: [...]} of `runs` (default: the
    registry's), each run as results/freshness.json states it; a run with results that the file does not
    name (it was written before the run) is unknown."""
    recorded = recorded_freshness(root)
    out = {"runs": [], "same": [], "other": [], "unknown": []}
    for run in run_names(params) if runs is None else runs:
        if load_metrics(run, root) is None:
            continue
        out["runs"].append(run)
        out[(recorded.get(run) or {}).get("state", "unknown")].append(run)
    return out


def older_runs(found: dict | None, runs: list[str]) -> list[str]:
    """The runs of one comparison made with older params than the others (`found`: regime(); None: not
    known), in `runs` order; [] when none of them is current or none older: then they share a regime, or
    none is known."""
    if found and any(r in found["same"] for r in runs) and any(r in found["other"] for r in runs):
        return [r for r in runs if r in found["other"]]
    return []

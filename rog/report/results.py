"""Reading the runs' results: results/experiments/RUN/metrics.json (and diagnostics.json, curve.json).

Metric paths name a value of metrics.json as "<iou type>.<metric>": bbox.AP, segm.APr, ...,
bbox.group1 .. bbox.group5 (the five frequency groups, rarest first), bbox.K100.APr (the max-dets sweep).
Values are reported in percent (AP x 100), None where the run or the value is missing (LVIS's -1).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from rog.pipeline.registry import curve_path, diagnostics_path, metrics_path

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


def paper_numbers(path: str | Path = PAPER_NUMBERS) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_metrics(run: str, root: str | Path = ".") -> dict | None:
    path = metrics_path(run, root)
    return json.loads(path.read_text()) if path.is_file() else None


def load_lookalike(run: str, root: str | Path = ".") -> dict | None:
    """results/experiments/RUN/lookalike.json (rog.evaluation.lookalike's analysis), None when the run has none."""
    path = metrics_path(run, root).with_name("lookalike.json")
    return json.loads(path.read_text()) if path.is_file() else None


def load_diagnostics(run: str, root: str | Path = ".") -> dict | None:
    path = diagnostics_path(run, root)
    return json.loads(path.read_text()) if path.is_file() else None


def load_curve(run: str, root: str | Path = ".") -> list[dict] | None:
    """results/experiments/RUN/curve.json (rog.engine.curve's points), None when the run has none."""
    path = curve_path(run, root)
    return json.loads(path.read_text()) if path.is_file() else None


def value(metrics: dict | None, path: str) -> float | None:
    """The value at `path` (see the module docstring) in percent, or None."""
    if metrics is None:
        return None
    parts = path.split(".")
    if len(parts) not in (2, 3) or parts[0] not in ("bbox", "segm"):
        raise ValueError(f"metric path '{path}': expected bbox|segm.METRIC, bbox|segm.groupN or bbox|segm.KN.METRIC")
    entry = metrics.get(parts[0])
    if entry is None:
        return None
    if len(parts) == 3:
        if not parts[1].startswith("K"):
            raise ValueError(f"metric path '{path}': the middle part must be K<max dets>")
        sweep = entry.get("max_dets_sweep", {}).get(parts[1][1:])
        raw = None if sweep is None else sweep["metrics"].get(parts[2])
    elif parts[1].startswith("group"):
        index = int(parts[1][5:]) - 1
        groups = entry.get("frequency_groups") or []
        raw = groups[index]["AP"] if 0 <= index < len(groups) else None
    else:
        raw = entry["metrics"].get(parts[1])
    if raw is None or raw < 0:
        return None
    return 100.0 * float(raw)


def aggregate(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation or None for one value, number of values) of the non-None values."""
    found = [v for v in values if v is not None]
    if not found:
        return None, None, 0
    mean = sum(found) / len(found)
    if len(found) < 2:
        return mean, None, len(found)
    var = sum((v - mean) ** 2 for v in found) / (len(found) - 1)
    return mean, math.sqrt(var), len(found)


def profiles_of(runs: list[str], root: str | Path = ".") -> list[str]:
    """The distinct profiles the given runs were made with (metrics.json's run.profile)."""
    seen = []
    for run in runs:
        m = load_metrics(run, root)
        profile = (m or {}).get("run", {}).get("profile")
        if profile and profile not in seen:
            seen.append(profile)
    return seen

"""One run as a reader sees it (notebooks/run.ipynb, stage run@NAME): its registry entry, headline
metrics, training losses and learning curve, from results/experiments/NAME/ only (no checkpoint).

Results made before losses.json existed show no loss plot; a curve of one point is not plotted.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from matplotlib.figure import Figure

from rog.pipeline.registry import RESULTS, read_params

METRICS = ("AP", "AP50", "APr", "APc", "APf", "AR")


def _read(run: str, file: str, root: str | Path):
    path = Path(root) / RESULTS / run / file
    return json.loads(path.read_text()) if path.is_file() else None


def metrics_markdown(metrics: dict) -> str:
    """bbox and segm rows of the main metrics (percent)."""
    lines = ["| | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for iou in ("bbox", "segm"):
        if iou in metrics:
            values = metrics[iou]["metrics"]
            lines.append(f"| {iou} | " + " | ".join(f"{100 * values[k]:.1f}" if values[k] >= 0 else "-"
                                                   for k in METRICS) + " |")
    return "\n".join(lines) + "\n"


def losses_figure(losses: dict, title: str) -> Figure:
    """The loss terms (windowed means of losses.json) against iteration, log scale."""
    fig = Figure(figsize=(6, 2.8), layout="constrained")
    ax = fig.add_subplot()
    for key in [k for k in losses if k.startswith("loss")]:
        ax.plot(losses["iteration"], losses[key], label=key, lw=1)
    ax.set_xlabel("iteration")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"training losses: {title}")
    return fig


def curve_figure(curve: list[dict], title: str) -> Figure:
    """Box (and mask) AP against iteration."""
    fig = Figure(figsize=(6, 2.8), layout="constrained")
    ax = fig.add_subplot()
    for iou in ("bbox", "segm"):
        points = [(p["iteration"], 100 * p[iou]["AP"]) for p in curve if iou in p]
        if points:
            ax.plot(*zip(*points), marker="o", label=f"{iou} AP")
    ax.set_xlabel("iteration")
    ax.set_ylabel("AP (%)")
    ax.legend(fontsize=7)
    ax.set_title(f"learning curve: {title}")
    return fig


def render(name: str, root: str | Path = ".") -> tuple[str, list[Figure]]:
    """(markdown, figures) of run `name`: its overlay of the defaults, what it ran, its metrics; the loss
    and learning-curve figures when its results hold them. FileNotFoundError when it has no metrics."""
    metrics = _read(name, "metrics.json", root)
    if metrics is None:
        raise FileNotFoundError(f"{Path(root) / RESULTS / name / 'metrics.json'}: run '{name}' has no results")
    overlay = (read_params(Path(root) / "params.yaml").get("experiments") or {}).get(name)
    run = metrics.get("run", {})
    parts = [f"# {name}", "Overlay of the defaults in params.yaml: "
             + (f"\n\n```yaml\n{yaml.safe_dump(overlay, sort_keys=False)}```" if overlay else "none (the defaults)."),
             f"Profile {run.get('profile')}, {run.get('iterations')} iterations, seed {run.get('seed')}, "
             f"objective {run.get('objective', {}).get('name')}, GAP {run.get('gap', {}).get('enabled')}, "
             f"sampler {run.get('sampler')}.", metrics_markdown(metrics)]
    figures = []
    losses = _read(name, "losses.json", root)
    if losses and losses.get("iteration"):
        figures.append(losses_figure(losses, name))
    curve = _read(name, "curve.json", root)
    if curve and len(curve) > 1:
        figures.append(curve_figure(curve, name))
    return "\n\n".join(parts), figures

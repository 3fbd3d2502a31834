"""One run as a reader sees it (notebooks/run.ipynb, stage run@NAME), from results/experiments/NAME/ only
(no checkpoint): its registry entry, headline metrics, the max-detections (K) sweep and the five
frequency groups, the training losses (one panel per term, the learning rate in its own panel), the
learning curve, what it makes of rare objects (lookalike.json) and its detections drawn on four
validation images (detections.json).

Results made before losses.json, lookalike.json or detections.json existed show no such section but
one sentence saying so; a curve of one point is not plotted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from rog.pipeline.registry import RESULTS, read_params
from rog.report import markdown
from rog.report.claims import IOU_NAMES
from rog.report.prose import say
from rog.report.provenance_table import dirty_note

METRICS = ("AP", "AP50", "APr", "APc", "APf", "AR")
SWEEP_METRICS = ("AP", "APr", "APc", "APf")
SMOOTH_POINTS = 9  # moving-average window over losses.json's points (each already a window mean)


def _read(run: str, file: str, root: str | Path):
    path = Path(root) / RESULTS / run / file
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(value: float | None) -> str:
    return "-" if value is None or value < 0 else f"{100 * value:.1f}"


def metrics_markdown(metrics: dict) -> str:
    """bbox and segm rows of the main metrics (percent)."""
    return markdown.table(["", *METRICS], [[iou, *(_pct(metrics[iou]["metrics"][k]) for k in METRICS)]
                                           for iou in ("bbox", "segm") if iou in metrics])


def sweep_markdown(metrics: dict) -> str:
    """One row per K of the max-detections sweep: box and mask AP, APr, APc, APf (percent); 'saturated' names
    the iou types (box, mask) for which no image has more than K detections (a larger K changes nothing for
    them: masks are pasted for fewer detections than boxes are kept, so they saturate at a smaller K)."""
    types = [t for t in ("bbox", "segm") if metrics.get(t, {}).get("max_dets_sweep")]
    if not types:
        return say("run_page.no_sweep") + "\n"
    ks = sorted({int(k) for t in types for k in metrics[t]["max_dets_sweep"]})
    head = [f"{t} {m}" for t in types for m in SWEEP_METRICS]
    lines = []
    for k in ks:
        cells, saturated = [], []
        for t in types:
            entry = metrics[t]["max_dets_sweep"].get(str(k))
            cells += [_pct(None if entry is None else entry["metrics"][m]) for m in SWEEP_METRICS]
            if entry and entry.get("saturated"):
                saturated.append(IOU_NAMES[t])
        lines.append([k, *cells, ", ".join(saturated)])
    return markdown.table(["K", *head, "saturated"], lines)


def groups_markdown(metrics: dict) -> str:
    """The five frequency groups (rarest first): training images per category, categories, box and mask AP."""
    groups = metrics.get("bbox", {}).get("frequency_groups")
    if not groups:
        return say("run_page.no_groups", why=metrics.get("protocol", {}).get(
            "train_image_counts", "no training counts")) + "\n"
    segm = {g["group"]: g for g in metrics.get("segm", {}).get("frequency_groups") or []}
    head = ["group", "training images per category", "categories (with val GT)", "box AP", "mask AP"]
    return markdown.table(head, [[g["group"], "{}-{}".format(*g["train_image_count_range"]),
                                  f"{g['num_categories']} ({g['num_with_gt']})", _pct(g["AP"]),
                                  _pct(segm[g["group"]]["AP"]) if g["group"] in segm else "-"] for g in groups])


def smooth(values, window: int = SMOOTH_POINTS) -> np.ndarray:
    """Centred moving average; near the ends the mean of the points the window holds (no padding)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0 or window <= 1:
        return x
    half = window // 2
    csum = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(len(x)) - half, 0, len(x))
    hi = np.clip(np.arange(len(x)) + half + 1, 0, len(x))
    return (csum[hi] - csum[lo]) / (hi - lo)


def losses_figure(losses: dict, title: str, window: int = SMOOTH_POINTS) -> Figure:
    """One panel per loss term of losses.json (raw windowed means faint, their moving average over
    `window` points solid; log y where every value is positive), then the learning rate."""
    terms = [k for k in losses if k.startswith("loss")]
    panels = terms + (["lr"] if "lr" in losses else [])
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    it = losses["iteration"]
    for ax, key in zip(axes.flat, panels):
        values = np.asarray(losses[key], dtype=float)
        if key == "lr":
            ax.plot(it, values, color="black", lw=1.2)
            ax.set_title("learning rate", fontsize=8)
        else:
            ax.plot(it, values, color="C0", lw=0.8, alpha=0.3)
            ax.plot(it, smooth(values, window), color="C0", lw=1.4)
            ax.set_title(key, fontsize=8)
            if (values > 0).all():
                ax.set_yscale("log")
                # ticks at 1, 2, 5 x 10^k in plain numbers: most terms span under a decade, where the
                # default log axis labels one tick or none
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_xlabel("iteration", fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(say("run_page.losses_title", title=title, window=window), fontsize=8)
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
    ax.set_title(say("run_page.curve_title", title=title))
    return fig


def lookalike_markdown(analysis: dict) -> str:
    """One run's rare objects by outcome (rog.evaluation.lookalike), in percent of them."""
    from rog.report.lookalike import OUTCOME_ROWS, outcome_fractions

    n = analysis["counts"]["instances"]
    if not n:
        return say("run_page.no_rare") + "\n"
    fractions = outcome_fractions(analysis)
    return (say("run_page.rare_objects", n=n, rule=analysis["rule"]) + "\n\n"
            + markdown.table(["outcome", "share of rare objects"],
                             [[label, f"{100 * fractions[key]:.1f} %"] for key, label in OUTCOME_ROWS]))


def provenance_markdown(metrics: dict) -> str:
    """Which code and environment made the run and what it cost: the training's and the evaluation's commit,
    versions, device and threads (metrics.json "train_provenance", "provenance"), seconds per phase and the
    checkpoint's params hash."""
    run, checkpoint = metrics.get("run") or {}, metrics.get("checkpoint") or {}
    lines = []
    for phase, key in (("Trained", "train_provenance"), ("Evaluated", "provenance")):
        p = metrics.get(key)
        if not p:
            lines.append(say("run_page.no_provenance", phase=phase))
            continue
        mismatches = say("run_page.mismatches", n=p["lock_mismatches"]) if p.get("lock_mismatches") else ""
        lines.append(say("run_page.made", phase=phase, commit=str(p.get("commit"))[:12], dirty=dirty_note(p),
                         python=p.get("python"), torch=p.get("torch"), torchvision=p.get("torchvision"),
                         device=p.get("device"), device_name=p.get("device_name"), threads=p.get("torch_threads"),
                         processes=p.get("processes"), mismatches=mismatches))
    train, iterations, jobs = run.get("train_seconds"), run.get("iterations"), run.get("jobs")
    if train:
        lines.append(say("run_page.cost", train=train, evaluate=run.get("eval_seconds", 0),
                         per_iteration=say("run_page.per_iteration", seconds=train / iterations) if iterations else "",
                         curve=say("run_page.curve_cost", seconds=run["curve_seconds"]) if run.get("curve_seconds") else "",
                         jobs=say("run_page.jobs", jobs=jobs) if jobs else ""))
    if checkpoint.get("params_hash"):
        lines.append(say("run_page.checkpoint", iteration=checkpoint.get("iteration"),
                         params_hash=checkpoint["params_hash"]))
    return "\n".join(lines) + "\n"


def ranking_name(run: dict) -> str:
    """The ranking term of metrics.json's "run" record ('none' without one); runs recorded before model.ranking
    hold the old `gap` mapping instead."""
    from rog.losses.ranking_terms import from_gap_section

    ranking = run.get("ranking") or from_gap_section(run.get("gap") or {})
    return ranking.get("name") or "none"


def render(name: str, root: str | Path = ".") -> list:
    """The page of run `name`, in order: markdown strings and figures. FileNotFoundError when it has no
    metrics."""
    from rog.report.detections import detections_figure, shown_rule

    metrics = _read(name, "metrics.json", root)
    if metrics is None:
        raise FileNotFoundError(f"{Path(root) / RESULTS / name / 'metrics.json'}: run '{name}' has no results")
    overlay = (read_params(Path(root) / "params.yaml").get("experiments") or {}).get(name)
    run = metrics.get("run", {})
    parts: list = [
        "\n\n".join([f"# {name}", say("run_page.overlay") + " "
                     + (f"\n\n```yaml\n{yaml.safe_dump(overlay, sort_keys=False)}```" if overlay else say("run_page.overlay_none")),
                     say("run_page.setup", profile=run.get("profile"), iterations=run.get("iterations"),
                         seed=run.get("seed"), objective=run.get("objective", {}).get("name"),
                         ranking=ranking_name(run), sampler=run.get("sampler")),
                     say("run_page.metrics"), metrics_markdown(metrics),
                     say("run_page.sweep"), sweep_markdown(metrics),
                     say("run_page.groups"), groups_markdown(metrics),
                     say("run_page.provenance"), provenance_markdown(metrics)]),
        say("run_page.losses")]
    losses = _read(name, "losses.json", root)
    if losses and losses.get("iteration"):
        parts.append(losses_figure(losses, name))
    else:
        parts.append(say("run_page.rerun", file="losses.json"))
    curve = _read(name, "curve.json", root)
    if curve and len(curve) > 1:
        parts += [say("run_page.curve"), curve_figure(curve, name)]
    parts.append(say("run_page.rare"))
    analysis = _read(name, "lookalike.json", root)
    parts.append(lookalike_markdown(analysis) if analysis else say("run_page.rerun", file="lookalike.json"))
    parts.append(say("run_page.detections"))
    sample = _read(name, "detections.json", root)
    if sample:
        parts += [sample["rule"] + ". " + shown_rule(), detections_figure(sample, name, root)]
    else:
        parts.append(say("run_page.rerun", file="detections.json"))
    return parts

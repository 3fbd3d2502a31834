"""The report's plots: matplotlib Figures (no pyplot state) drawn from the series rog.report.figures reads
from results/. Nothing here reads a file: each function takes its series and returns a Figure.

Classes are categorical: per-class plots draw markers, never lines joining classes. Bands are the min to
max over seeds.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rog.report import claims, stats
from rog.report.figures import IOU_NAMES, K_PANELS, SWEEP_KNOBS, SWEEP_METRICS, SWEEP_PANELS

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
MARKERS = ("o", "s", "^", "D")
IOU_TITLES = (("bbox", "box AP"), ("segm", "mask AP"))
BOX_OR_MASK = {"bbox": "box", "segm": "mask"}
TITLE_PAD = 16  # points: room for _group_spans' labels between the axes and the title


def plot_gradient_ratios(series: list[dict], labels: dict[str, str]) -> Figure:
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for colour, s in zip(COLOURS, series):
        order = s["order"]
        ax.plot(np.arange(len(order)), [s["ratio"][i] for i in order], color=colour, ls="none", marker=".",
                label=f"{labels.get(s['key'], s['key'])} ({s['run']})")
    _group_spans(ax, [series[0]["frequency"][i] for i in series[0]["order"]] if series else [])
    ax.set_xlabel("classes, frequent -> rare")
    ax.set_ylabel("positive / negative gradient")
    ax.set_title("Figure 4: accumulated positive / negative gradient per class", pad=TITLE_PAD)
    if series:
        ax.legend(fontsize=8)
    return fig


def plot_weight_norms_and_ap(series: list[dict], labels: dict[str, str]) -> Figure:
    """Figure 5 as three panels: (a) classifier weight norm and (b) AP per class, classes frequent -> rare
    (markers, groups shaded); (c) AP per class against its training image count (log x), classes with
    AP and a count > 0 only. The AP is each series' `iou` (named on the axes)."""
    fig = Figure(figsize=(8, 8.5), layout="constrained")
    grid = fig.add_gridspec(3, 1)
    ax_norm = fig.add_subplot(grid[0])
    ax_ap = fig.add_subplot(grid[1], sharex=ax_norm)
    ax_count = fig.add_subplot(grid[2])
    what = IOU_NAMES.get(series[0]["iou"], "AP") if series else "AP"
    for colour, marker, s in zip(COLOURS, MARKERS, series):
        order = s["order"]
        x = np.arange(len(order))
        label = f"{labels.get(s['key'], s['key'])} ({s['run']})"
        style = {"color": colour, "marker": marker, "ms": 3.5, "ls": "none", "label": label, "alpha": 0.8}
        ax_norm.plot(x, [s["norm"][i] for i in order], **style)
        ax_ap.plot(x, [np.nan if s["ap"][i] is None else s["ap"][i] for i in order], **style)
        points = [(c, a) for c, a in zip(s["count"], s["ap"]) if c and a is not None]
        ax_count.plot([c for c, _ in points], [a for _, a in points], **style)
    if series:
        freq = [series[0]["frequency"][i] for i in series[0]["order"]]
        _group_spans(ax_norm, freq)
        _group_spans(ax_ap, freq)
        ax_norm.legend(fontsize=8)
        ax_count.legend(fontsize=8)
    ax_norm.set_ylabel("classifier weight norm")
    ax_norm.set_title("Figure 5(a): weight norms of the classifier", pad=TITLE_PAD)
    ax_ap.set_ylabel(f"{what} (%)")
    ax_ap.set_xlabel("classes, frequent -> rare")
    ax_ap.set_title(f"Figure 5(b): {what} of each category", pad=TITLE_PAD)
    ax_count.set_xscale("log")
    ax_count.set_xlabel("training images holding the class (log)")
    ax_count.set_ylabel(f"{what} (%)")
    ax_count.set_title(f"(c) {what} of each category against its training images")
    return fig


def _group_spans(ax, frequency: list[str]) -> None:
    """Shade the frequency groups along the x axis of an ordered class plot and name each just above
    the axes (titles above them need pad=TITLE_PAD)."""
    shades = {"f": "#ffffff", "c": "#f2f2f2", "r": "#e0e0e0"}
    start = 0
    for i in range(1, len(frequency) + 1):
        if i == len(frequency) or frequency[i] != frequency[start]:
            ax.axvspan(start - 0.5, i - 0.5, color=shades.get(frequency[start], "#ffffff"), zorder=0)
            ax.text((start + i - 1) / 2, 1.0, frequency[start], transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)
            start = i


def _percent(raw: float | None) -> float:
    return np.nan if raw is None or raw < 0 else 100.0 * raw


def learning_curves(curves: dict[str, list[dict]], ends: dict[str, dict] | None = None,
                    lr_drops: list[int] = ()) -> Figure:
    """AP (top row) and APr (bottom row), box (left) and mask (right), in percent, against iteration: one line
    per entry of `curves` (label -> curve.json points); `ends` (label -> a point): the 1x end point, a star in
    the colour of the curve with the same label; `lr_drops`: iterations marked by dotted vertical lines. The
    legend sits below the panels, where it hides no point. An APr of -1 (no rare ground truth) is left out."""
    ends = ends or {}
    fig = Figure(figsize=(9, 6.2), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    labels = list(dict.fromkeys([*curves, *ends]))
    for row, metric in zip(axes, ("AP", "APr")):
        for ax, (iou, title) in zip(row, IOU_TITLES):
            for colour, label in zip(COLOURS, labels):
                points = [p for p in curves.get(label) or [] if iou in p and p[iou][metric] >= 0]
                if points:
                    ax.plot([p["iteration"] for p in points], [_percent(p[iou][metric]) for p in points],
                            color=colour, marker=".", lw=1.2, label=f"{label}, 2x")
                end = ends.get(label)
                if end is not None and iou in end and end[iou][metric] >= 0:
                    ax.plot([end["iteration"]], [_percent(end[iou][metric])], color=colour, marker="*", ms=11,
                            ls="none", label=f"{label}, 1x end")
            for i, step in enumerate(lr_drops):
                ax.axvline(step, color="grey", ls=":", lw=1, label="lr drop" if i == 0 else None)
            name = f"{title}{'' if metric == 'AP' else 'r'}"
            ax.set_ylabel(f"{name} (%)")
            ax.set_title(f"{name} against iteration", fontsize=10)
            ax.grid(alpha=0.3)
        for ax in row:
            ax.set_xlabel("iteration" if metric == "APr" else "")
    handles, names = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, fontsize=8, loc="outside lower center", ncol=min(len(names), 5))
    return fig


def _band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """values [seeds, X] (NaN = missing) -> (mean [X], min [X], max [X]) over seeds, NaN where none."""
    values = np.asarray(values, dtype=float)
    seen = ~np.isnan(values)
    filled = np.where(seen, values, 0.0)
    count = seen.sum(axis=0)
    mean = np.where(count > 0, filled.sum(axis=0) / np.maximum(count, 1), np.nan)
    low = np.where(count > 0, np.where(seen, values, np.inf).min(axis=0), np.nan)
    high = np.where(count > 0, np.where(seen, values, -np.inf).max(axis=0), np.nan)
    return mean, low, high


def plot_ap_vs_k(series: list[dict], labels: dict[str, str], iou: str = "bbox") -> Figure:
    """Table 3 as a figure: four panels (rare, common, frequent, all) of AP against K (log x); per row
    of `series` (k_sweep_series) the mean over seeds as a line with markers and the min-max over seeds
    as a band (rows with one run: no band)."""
    fig = Figure(figsize=(10, 3.0), layout="constrained")
    axes = fig.subplots(1, len(K_PANELS), sharex=True)
    what = IOU_NAMES.get(iou, "AP")
    for ax, (metric, title) in zip(axes, K_PANELS):
        for colour, s in zip(COLOURS, series):
            mean, low, high = _band(s["values"][metric])
            seeds = len(s["runs"])
            ax.plot(s["k"], mean, color=colour, marker="o", ms=3.5, lw=1.2,
                    label=f"{labels.get(s['key'], s['key'])} ({seeds} seed{'s' if seeds > 1 else ''})")
            if seeds > 1:
                ax.fill_between(s["k"], low, high, color=colour, alpha=0.2, lw=0)
        _log_ticks(ax, sorted({k for s in series for k in s["k"]}))
        ax.set_xlabel("K, detections per image")
        ax.set_title(f"{title} ({metric})")
    axes[0].set_ylabel(f"{what} (%)")
    if series:
        axes[0].legend(fontsize=8)
    fig.suptitle(f"Table 3: {what} against K; line: mean over seeds, band: min to max over seeds", fontsize=10)
    return fig


def _log_ticks(ax, values: list[float]) -> None:
    """Log x with a plain tick at each of `values` (few, uneven values: 20, 50, 100, 300, 1000)."""
    ax.set_xscale("log")
    if values:
        ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


def plot_sweeps(series: dict, iou: str = "bbox") -> Figure:
    """One column per knob (the table's order), one row per SWEEP_PANELS entry (AP with APc and APf; APr on its
    own scale): each metric's mean over a setting's runs against the knob's value (log x); the paper's setting
    a star, its seed spread (min to max) a band; a knob's value 0 (lambda 0: no GAP) a dashed line."""
    fig = Figure(figsize=(11, 5.4), layout="constrained")
    axes = fig.subplots(len(SWEEP_PANELS), len(SWEEP_KNOBS), sharey="row", squeeze=False)
    what = IOU_NAMES.get(iou, "AP")
    default = series.get("default")
    colours = dict(zip([m for panel in SWEEP_PANELS for m in panel], COLOURS))
    for row, metrics in zip(axes, SWEEP_PANELS):
        for ax, knob in zip(row, SWEEP_KNOBS):
            points = [p for p in series.get(knob) or [] if p["value"] > 0]
            off = next((p for p in series.get(knob) or [] if p["value"] == 0), None)
            for metric in metrics:
                colour = colours[metric]
                if default is not None and len(default[metric]) > 1:
                    ax.axhspan(min(default[metric]), max(default[metric]), color=colour, alpha=0.12, lw=0)
                if off is not None and off[metric]:
                    ax.axhline(float(np.mean(off[metric])), color=colour, ls="--", lw=1,
                               label=f"{metric}, {knob} 0 (no GAP)")
                if points:
                    ax.plot([p["value"] for p in points], [float(np.mean(p[metric])) for p in points], color=colour,
                            marker="o", ms=4, lw=1.2, label=metric)
                    ax.plot([p["value"] for p in points if p["paper"]],
                            [float(np.mean(p[metric])) for p in points if p["paper"]], "*", color=colour, ms=12)
            if points and min(p["value"] for p in points) > 0:
                _log_ticks(ax, [p["value"] for p in points])
            ax.set_xlabel(knob)
            ax.grid(alpha=0.3)
            setting = (series.get("setting") or {}).get(knob)
            ax.set_title(f"{knob} swept" + (f" (paper's: {setting:g}, star)" if setting is not None else ""),
                         fontsize=9)
        row[0].set_ylabel(f"{what} {'/'.join(metrics)} (%)")
        if any(line.get_label()[0] != "_" for ax in row for line in ax.get_lines()):
            handles, labels = [], []
            for ax in row:
                for h, l in zip(*ax.get_legend_handles_labels()):
                    if l not in labels:
                        handles.append(h)
                        labels.append(l)
            row[-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def plot_seed_strip(series: list[dict], labels: dict[str, str], iou: str = "bbox") -> Figure:
    """One panel per metric (AP, APr): a row per headline row, each seed a dot, the mean a vertical bar."""
    fig = Figure(figsize=(9, 0.5 + 0.45 * max(len(series), 2)), layout="constrained")
    axes = fig.subplots(1, len(SWEEP_METRICS), sharey=True)
    what = IOU_NAMES.get(iou, "AP")
    y = np.arange(len(series))
    for ax, metric in zip(axes, SWEEP_METRICS):
        for i, s in enumerate(series):
            vals = [v for v in s[metric] if v is not None]
            ax.plot(vals, [i] * len(vals), ls="none", marker="o", ms=5, color=COLOURS[0], alpha=0.7,
                    label="one seed" if i == 0 else None)
            if vals:
                ax.plot([float(np.mean(vals))], [i], ls="none", marker="|", ms=16, mew=2, color="black",
                        label="mean" if i == 0 else None)
        ax.set_xlabel(f"{metric} (%), {what}")
        ax.set_title(f"{metric} per seed")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [labels.get(s["key"], s["key"]) for s in series])
    axes[0].set_ylim(max(len(series), 1) - 0.4, -0.6)  # the first row on top
    if series:
        axes[0].legend(fontsize=7, loc="best")
    return fig


def plot_rare_ap(rows: list[dict]) -> Figure:
    """Rare AP per Table 1 row: our box APr and mask APr (every seed a dot, the mean a bar, +- sd) and the
    paper's mask APr, three panels sharing the rows. rows: [{label, gap, paper, bbox: {seeds, mean, sd},
    segm: {...} or None}]."""
    fig = Figure(figsize=(11, 0.42 * max(len(rows), 4) + 1.4), layout="constrained")
    box, mask, theirs = fig.subplots(1, 3, sharey=True, width_ratios=[3, 3, 2])
    y = np.arange(len(rows))[::-1]
    colours = ["#d62728" if r["gap"] else "#7f7f7f" for r in rows]
    for ax, iou in ((box, "bbox"), (mask, "segm")):
        for yi, r, c in zip(y, rows, colours):
            found = r.get(iou)
            if not found:
                continue
            ax.barh(yi, found["mean"], color=c, alpha=0.35, height=0.7)
            ax.plot(found["seeds"], [yi] * len(found["seeds"]), "o", color=c, ms=4)
            if found["sd"] is not None:
                ax.errorbar(found["mean"], yi, xerr=found["sd"], color="black", capsize=3, lw=1)
        ax.set_xlabel(f"our {claims.IOU_NAMES[iou]} APr (LT-Glyphs)")
    theirs.barh(y, [r["paper"] or 0 for r in rows], color=colours, alpha=0.35, height=0.7)
    theirs.plot([r["paper"] for r in rows], y, "D", mfc="none", color="black", ms=4)
    theirs.set_xlabel("the paper's mask APr (LVIS v1)")
    box.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    box.set_title("Rare AP per Table 1 row (red: + GAP; dots: seeds, bar: mean, line: ± sd)", loc="left",
                  fontsize=10)
    top = max([v for r in rows for iou in ("bbox", "segm") if r.get(iou) for v in r[iou]["seeds"]] + [1.0])
    for ax in (box, mask):
        ax.set_xlim(0, 1.08 * top)      # box and mask on one scale: their ratio is read by eye
    for ax in (box, mask, theirs):
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(left=0)
    return fig


def plot_claims(rows: list[dict]) -> Figure:
    """Each pair's difference, ours (dot, bar = NOISE_K x noise) beside the paper's (open diamond)."""
    rows = [r for r in rows if r["ours"] is not None and r["id"] != "k_sweep"]  # Table 3: another unit
    fig = Figure(figsize=(11, 0.42 * max(len(rows), 4) + 1.4), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    colour = {"reproduced": "#2ca02c", "within noise": "#7f7f7f", "opposite": "#d62728"}
    for yi, r in zip(y, rows):
        ax.errorbar(r["ours"], yi, xerr=r["threshold"], fmt="o", color=colour.get(r["status"], "black"),
                    capsize=3, ms=5)
        if r["paper"] is not None:
            ax.plot(r["paper"], yi, "D", mfc="none", color="black", ms=5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [textwrap.fill(f"{r['pair']} ({r['metric']})", 60) for r in rows], fontsize=7)
    ax.set_xlabel("difference, better - worse (AP points)")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=f"ours, {s} (bar: {stats.NOISE_K:g} x noise)") for s, c in colour.items()]
    handles.append(Line2D([], [], marker="D", ls="", mfc="none", color="black", label="the paper's"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title("Each claim's pair: our difference beside the paper's", loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def plot_gain_by_length(series: list[dict]) -> Figure:
    """GAP's rare-AP gain (gap - ce) against schedule length, box and mask APr side by side: a dot per length,
    its bar NOISE_K x the noise of the difference (a bar that crosses 0 is within noise)."""
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    metrics = list(dict.fromkeys(s["metric"] for s in series))
    for i, (metric, colour) in enumerate(zip(metrics, COLOURS)):
        points = [s for s in series if s["metric"] == metric and s["verdict"] is not None]
        x = [s["length"] * (1 + 0.04 * (i - (len(metrics) - 1) / 2)) for s in points]  # side by side
        ax.errorbar(x, [s["verdict"].difference for s in points], yerr=[s["verdict"].threshold for s in points],
                    fmt="o-", color=colour, capsize=4, label=f"{BOX_OR_MASK[metric.split('.')[0]]} {metric.split('.')[1]}")
        for xi, s in zip(x, points):
            ax.annotate(f"n={s['verdict'].n[0]}/{s['verdict'].n[1]}", (xi, s["verdict"].difference), fontsize=7,
                        textcoords="offset points", xytext=(6, -3))
    ax.axhline(0, color="black", lw=0.8)
    lengths = sorted({s["length"] for s in series})
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [f"{v:g}x" for v in lengths])
    ax.set_xlabel("schedule length")
    ax.set_ylabel("GAP's gain (AP points)")
    ax.set_title(f"Rare AP gained by GAP against schedule length (bar: {stats.NOISE_K:g} x noise; n = seeds GAP/CE)",
                 loc="left", fontsize=9)
    if metrics:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_per_class_gain(rows: list[dict], iou: str = "bbox") -> Figure:
    """Per class, GAP's AP gain against the class's training images (log x), coloured by frequency group."""
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    colour = {"r": "#d62728", "c": "#ff7f0e", "f": "#1f77b4"}
    for group, name in (("r", "rare"), ("c", "common"), ("f", "frequent")):
        points = [r for r in rows if r["frequency"] == group and r["train_images"]]
        ax.plot([r["train_images"] for r in points], [r["gain"] for r in points], "o", color=colour[group], ms=4,
                alpha=0.8, label=f"{name} ({len(points)})")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training images of the class (log)")
    ax.set_ylabel(f"{IOU_NAMES.get(iou, iou)}: GAP - CE")
    ax.set_title("Per-class gain of GAP against training images (mean over seeds)", loc="left", fontsize=9)
    if rows:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_own_rank_histogram(histogram: dict[str, dict], bins: tuple[tuple[int, int], ...]) -> Figure:
    """Share of rare objects whose own-class detection ranks in each bin of its image's top K, one bar per
    model; the last bar: no own-class detection in the top K (lost to the cap, or never detected)."""
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.subplots()
    names = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in bins] + ["not in top K"]
    x = np.arange(len(names))
    width = 0.8 / max(len(histogram), 1)
    for i, ((label, h), colour) in enumerate(zip(histogram.items(), ("#7f7f7f", "#d62728", *COLOURS))):
        shares = [100.0 * c / h["objects"] for c in [*h["bins"], h["not_in_top_k"]]]
        ax.bar(x + (i - (len(histogram) - 1) / 2) * width, shares, width, color=colour,
               label=f"{label} ({h['objects']} rare objects, K = {h['k']})")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_xlabel("rank of the object's own-class detection among its image's detections")
    ax.set_ylabel("% of rare objects")
    ax.set_title("Where rare objects' own class ranks in their image (Table 3's mechanism)", loc="left", fontsize=9)
    if histogram:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig

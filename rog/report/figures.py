"""Figures 4 and 5 from the runs' diagnostics.json and metrics.json (matplotlib Figures, no pyplot state).

Figure 4: per class, the ratio of accumulated positive to negative gradient magnitude that a loss
sent to that class's logit during training (rog.engine.diagnostics), classes sorted by training
frequency. A figure row reads source `objective` (the object-level loss) or `gap` of its run.
Figure 5: (a) the L2 norm of each class's classifier weight, (b) the AP of each class, sorted the same.
`balance` turns either into one number per run: the rare / frequent ratio of group means (1 = balanced).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rog.report.registry import sections
from rog.report.results import load_diagnostics, load_metrics

GROUPS = ("r", "c", "f")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _order(diag: dict) -> list[int]:
    """Class indices from most to least frequent (by frequency group f, c, r; then by id)."""
    rank = {"f": 0, "c": 1, "r": 2}
    freq = diag.get("frequency") or ["?"] * diag["num_classes"]
    ids = diag.get("category_ids") or list(range(diag["num_classes"]))
    return sorted(range(diag["num_classes"]), key=lambda i: (rank.get(freq[i], 3), ids[i]))


def group_means(values: list[float], frequency: list[str]) -> dict[str, float | None]:
    """Mean of `values` per frequency group r/c/f (None for an empty group), NaNs skipped."""
    out = {}
    for g in GROUPS:
        vals = [v for v, f in zip(values, frequency) if f == g and v is not None and math.isfinite(v)]
        out[g] = sum(vals) / len(vals) if vals else None
    return out


def balance(values: list[float], frequency: list[str]) -> float | None:
    """mean over rare classes / mean over frequent classes (1 = balanced); None if either is missing or 0."""
    means = group_means(values, frequency)
    if not means["r"] or not means["f"]:
        return None
    return means["r"] / means["f"]


def _runs_with_diagnostics(row: dict, root: str | Path):
    """(run, diagnostics) for each run of a table/figure row that has diagnostics.json, in row order."""
    for run in row.get("runs") or []:
        diag = load_diagnostics(run, root)
        if diag is not None:
            yield run, diag


def gradient_series(params: dict, root: str | Path = ".", name: str = "figure4") -> list[dict]:
    """[{key, label, run, source, frequency, ratio}] per figure-4 row whose run has diagnostics."""
    out = []
    for row in sections(params)[name].get("rows") or []:
        for run, diag in _runs_with_diagnostics(row, root):
            source = row.get("source", "objective")
            grads = (diag.get("gradients") or {}).get(source)
            if not grads or not any(grads["negative"]):
                continue
            out.append({"key": row["paper"], "run": run, "source": source, "frequency": diag["frequency"],
                        "order": _order(diag), "ratio": grads["ratio"]})
            break  # one run (the first seed) per row
    return out


def gradient_totals(params: dict, name: str, root: str | Path = ".") -> list[dict]:
    """How hard each loss pushed the classifier: per row of table/figure `name` (its first run with
    diagnostics), the gradient magnitude each source (objective, gap) sent to the class logits, summed
    over classes and training (positive + negative), and the mean classifier weight norm.
    [{key, run, objective, gap, weight_norm}]."""
    out = []
    for row in sections(params)[name].get("rows") or []:
        for run, diag in _runs_with_diagnostics(row, root):
            grads = diag.get("gradients") or {}
            total = {source: float(sum(grads[source]["positive"]) + sum(grads[source]["negative"]))
                     if source in grads else None for source in ("objective", "gap")}
            norms = diag.get("classifier_weight_norm") or []
            out.append({"key": row["paper"], "run": run, **total,
                        "weight_norm": float(np.mean(norms)) if norms else None})
            break  # one run (the first seed) per row
    return out


def gradient_totals_markdown(rows: list[dict], labels: dict[str, str]) -> str:
    lines = ["| row | run | object-level loss gradient | ranking term gradient | mean classifier weight norm |",
             "|---|---|---|---|---|"]
    for r in rows:
        cells = ["-" if r[k] is None else f"{r[k]:.3g}" for k in ("objective", "gap", "weight_norm")]
        lines.append(f"| {labels.get(r['key'], r['key'])} | {r['run']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def omega_by_frequency(counts, gammas=(0.0, 0.5, 1.0, 2.0)) -> list[dict]:
    """Eq. 9's class weights omega on a training set, per gamma and LVIS frequency group.

    counts: rog.data.counts.CategoryCounts (omega from its instance counts, as GAP's `dataset`
    weighting; the default `online` counts of positive RoIs track them). [{gamma, group, mean, min, max}].
    """
    from rog.losses.gap import class_weights

    out = []
    for gamma in gammas:
        omega = class_weights(counts.instance_count, gamma).numpy()
        for group in "rcf":
            values = omega[[f == group for f in counts.frequency]]
            if values.size:
                out.append({"gamma": float(gamma), "group": group, "mean": float(values.mean()),
                            "min": float(values.min()), "max": float(values.max())})
    return out


def omega_markdown(rows: list[dict]) -> str:
    lines = ["| gamma | group | mean omega | min | max |", "|---|---|---|---|---|"]
    lines += [f"| {r['gamma']:g} | {r['group']} | {r['mean']:.3g} | {r['min']:.3g} | {r['max']:.3g} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_gradient_ratios(series: list[dict], labels: dict[str, str]) -> Figure:
    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for colour, s in zip(COLOURS, series):
        order = s["order"]
        ax.plot(np.arange(len(order)), [s["ratio"][i] for i in order], color=colour, lw=1.2,
                label=f"{labels.get(s['key'], s['key'])} ({s['run']})")
    _group_spans(ax, [series[0]["frequency"][i] for i in series[0]["order"]] if series else [])
    ax.set_xlabel("classes, frequent -> rare")
    ax.set_ylabel("positive / negative gradient")
    ax.set_title("Figure 4: accumulated positive / negative gradient per class")
    if series:
        ax.legend(fontsize=8)
    return fig


def weight_norm_series(params: dict, root: str | Path = ".", name: str = "figure5") -> list[dict]:
    """[{key, run, frequency, order, norm, ap}] per figure-5 row with diagnostics and metrics (bbox AP)."""
    out = []
    for row in sections(params)[name].get("rows") or []:
        for run in row.get("runs") or []:
            diag, metrics = load_diagnostics(run, root), load_metrics(run, root)
            if diag is None or metrics is None:
                continue
            iou = "bbox"  # LT-Glyphs masks are barely learned (segm AP ~2): per-class mask AP is noise
            by_id = {c["id"]: c["AP"] for c in metrics[iou]["per_category"]}
            ids = diag.get("category_ids") or []
            ap = [100.0 * by_id[c] if by_id.get(c, -1) >= 0 else None for c in ids]
            out.append({"key": row["paper"], "run": run, "frequency": diag["frequency"], "order": _order(diag),
                        "norm": diag["classifier_weight_norm"], "ap": ap, "iou": iou})
            break
    return out


def plot_weight_norms_and_ap(series: list[dict], labels: dict[str, str]) -> Figure:
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax_norm, ax_ap = fig.subplots(2, 1, sharex=True)
    for colour, s in zip(COLOURS, series):
        order = s["order"]
        x = np.arange(len(order))
        label = f"{labels.get(s['key'], s['key'])} ({s['run']})"
        ax_norm.plot(x, [s["norm"][i] for i in order], color=colour, lw=1.2, label=label)
        ap = [s["ap"][i] for i in order]
        ax_ap.plot(x, [np.nan if v is None else v for v in ap], color=colour, lw=1.0, marker=".", label=label)
    if series:
        freq = [series[0]["frequency"][i] for i in series[0]["order"]]
        _group_spans(ax_norm, freq)
        _group_spans(ax_ap, freq)
        ax_norm.legend(fontsize=8)
    ax_norm.set_ylabel("classifier weight norm")
    ax_norm.set_title("Figure 5(a): weight norms of the classifier")
    ax_ap.set_ylabel("AP (%)")
    ax_ap.set_xlabel("classes, frequent -> rare")
    ax_ap.set_title("Figure 5(b): AP of each category")
    return fig


def _group_spans(ax, frequency: list[str]) -> None:
    """Shade the frequency groups along the x axis of an ordered class plot."""
    shades = {"f": "#ffffff", "c": "#f2f2f2", "r": "#e0e0e0"}
    start = 0
    for i in range(1, len(frequency) + 1):
        if i == len(frequency) or frequency[i] != frequency[start]:
            ax.axvspan(start - 0.5, i - 0.5, color=shades.get(frequency[start], "#ffffff"), zorder=0)
            ax.text((start + i - 1) / 2, 1.0, frequency[start], transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8)
            start = i


def balance_rows(series: list[dict], key: str) -> list[dict]:
    """Per series: group means of `key` (ratio, norm or ap) and the rare/frequent balance."""
    out = []
    for s in series:
        means = group_means(s[key], s["frequency"])
        out.append({"key": s["key"], "run": s["run"], **{g: means[g] for g in GROUPS},
                    "balance": balance(s[key], s["frequency"])})
    return out


def balance_markdown(rows: list[dict], labels: dict[str, str], what: str) -> str:
    lines = [f"| row | run | {what} rare | common | frequent | rare / frequent |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = ["-" if r[g] is None else f"{r[g]:.3g}" for g in GROUPS]
        bal = "-" if r["balance"] is None else f"{r['balance']:.3g}"
        lines.append(f"| {labels.get(r['key'], r['key'])} | {r['run']} | " + " | ".join(cells) + f" | {bal} |")
    return "\n".join(lines) + "\n"


def balance_verdict(rows: list[dict], baseline: str, method: str, what: str) -> str:
    """Whether `method`'s rare/frequent balance is closer to 1 than `baseline`'s (the paper's claim)."""
    by = {r["key"]: r for r in rows}
    if baseline not in by or method not in by or by[baseline]["balance"] is None or by[method]["balance"] is None:
        return f"Not checked ({what}): a run is missing or has an empty rare/frequent group."
    b, m = by[baseline]["balance"], by[method]["balance"]
    closer = abs(math.log(m)) < abs(math.log(b)) if b > 0 and m > 0 else False
    return (f"{'reproduced' if closer else 'not reproduced'} ({what}): rare/frequent {m:.3g} with {method} vs "
            f"{b:.3g} with {baseline} (1 = balanced; the paper: GAP is more balanced).")

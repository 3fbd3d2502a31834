"""The look-alike page (notebooks/lookalike.ipynb, stage lookalike): does GAP stop rare glyphs from
being out-ranked by classes that look like them? Sigmoid CE against sigmoid CE + GAP (Table 1's
headline pair, random sampling), pooled over their seeds, from each run's lookalike.json
(rog.evaluation.lookalike) and detections.json (rog.evaluation.samples) only.

    page = render(".")    # .parts: markdown and (stem, figure); page.write() -> results/tables/lookalike.md,
                          # results/figures/lookalike.png and lookalike_detections.png
    answer(".")           # the overview's record (shares, yes / mostly_not), None while a run has no lookalike.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from rog.pipeline.registry import RESULTS, pair_runs, read_params
from rog.report import markdown, stats
from rog.report.markdown import signed
from rog.report.prose import say
from rog.report.results import aggregate, load_lookalike

NAME = "lookalike"
OUTCOME_ROWS = (
    ("correct", "its own class"),
    ("lookalike_f", "a frequent look-alike (f)"),
    ("lookalike_c", "a common look-alike (c)"),
    ("lookalike_r", "a rare look-alike (r)"),
    ("other_f", "another frequent class (f)"),
    ("other_c", "another common class (c)"),
    ("other_r", "another rare class (r)"),
    ("missed", "nothing (no detection with IoU >= 0.5)"),
    ("covered", "own class among the covering detections (any rank)"),
)
BAR_OUTCOMES = (("correct", "own class", "#2ca02c"), ("lookalike", "look-alike", "#d62728"),
                ("other", "other class", "#7f7f7f"), ("missed", "missed", "#c7c7c7"))
INTRO = (
    "A question the paper's thesis raises but does not test: do rare classes lose the ranking above all to "
    "classes that look like them? (The paper's own mechanism is missed detections under the per-image cap K, "
    "Table 3; this page measures misclassification.) "
    "For every rare ground-truth glyph of the validation split (LVIS frequency r: 1-10 training images) we take "
    "the detection the model ranks first on it: among the image's top K detections (any class; K as in the "
    "evaluation, 300 as LVIS) whose box "
    "overlaps the glyph by IoU >= 0.5, the highest-scoring one. Its class is the glyph's own, a *look-alike* "
    "(a class whose glyphs, drawn in the dataset's fonts and scaled to the same size, overlap this one's by IoU "
    ">= 0.5 on average), another class, or there is none (missed). Predicted classes are split by frequency "
    "group (r/c/f). Sigmoid CE against sigmoid CE + GAP (Table 1's headline pair), pooled over their seeds.")
MISSING = ("The look-alike analysis reads each run's lookalike.json, which `rog evaluate` writes; these results "
           "have none (no results/experiments/RUN/lookalike.json for {runs}).")


@dataclass
class Page:
    """Markdown blocks and (file stem, figure) pairs, in reading order."""

    parts: list = field(default_factory=list)

    @property
    def figures(self) -> dict[str, Figure]:
        return {part[0]: part[1] for part in self.parts if not isinstance(part, str)}

    def markdown(self) -> str:
        """The page as results/tables/lookalike.md holds it (figures as links to results/figures/STEM.png)."""
        blocks = [part if isinstance(part, str) else f"![{part[0]}](../figures/{part[0]}.png)" for part in self.parts]
        return "\n\n".join(blocks).rstrip("\n") + "\n"

    def write(self, root: str | Path = ".") -> Path:
        """results/tables/lookalike.md and each figure as results/figures/STEM.png below root."""
        from rog.report.pages import write_page

        return write_page(root, NAME, self.markdown(), self.figures)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        for part in self.parts:
            display(Markdown(part) if isinstance(part, str) else part[1])


load_analysis = load_lookalike  # the name this module's callers use


def flat_counts(analysis: dict) -> dict[str, int]:
    """The counts of one analysis keyed as OUTCOME_ROWS (lookalike_f, other_c, ...), plus instances."""
    c = analysis["counts"]
    out = {"instances": c["instances"], "correct": c["correct"], "missed": c["missed"], "covered": c["covered"]}
    for kind in ("lookalike", "other"):
        for group, n in c[kind].items():
            out[f"{kind}_{group}"] = n
    return out


def outcome_fractions(analysis: dict) -> dict[str, float]:
    """Share of the rare objects per OUTCOME_ROWS key, and per BAR_OUTCOMES kind (lookalike, other)."""
    counts = flat_counts(analysis)
    n = max(counts["instances"], 1)
    out = {key: counts.get(key, 0) / n for key, _ in OUTCOME_ROWS}
    for kind in ("lookalike", "other"):
        out[kind] = sum(out[f"{kind}_{g}"] for g in "rcf")
    return out


def pooled(analyses: list[dict]) -> dict:
    """Seeds pooled: counts and confusion summed (the same rare objects, one analysis per seed)."""
    counts: dict[str, int] = {}
    confusion: dict[str, dict[str, int]] = {}
    categories: dict = {}
    rare: dict = {}
    for a in analyses:
        for key, n in flat_counts(a).items():
            counts[key] = counts.get(key, 0) + n
        for gt, row in a["confusion"].items():
            mine = confusion.setdefault(gt, {})
            for pred, n in row.items():
                mine[pred] = mine.get(pred, 0) + n
        categories.update(a["categories"])
        rare.update({str(r["id"]): r for r in a["rare_categories"]})
    return {"counts": counts, "confusion": confusion, "categories": categories, "rare": rare, "seeds": len(analyses)}


def _cell(per_seed: list[float]) -> str:
    mean = float(np.mean(per_seed))
    if len(per_seed) < 2:
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * float(np.std(per_seed, ddof=1)):.1f}"


def rate_markdown(found: dict[str, list[dict]]) -> str:
    """Outcome rows, one column per model: percent of the rare objects, mean ± sd over seeds, and the
    difference of the means (second model minus first)."""
    labels = list(found)
    head = [f"{label} ({len(found[label])} seed{'s' if len(found[label]) != 1 else ''})" for label in labels]
    lines = []
    fractions = {label: [outcome_fractions(a) for a in found[label]] for label in labels}
    for key, text in OUTCOME_ROWS:
        means = [float(np.mean([f[key] for f in fractions[label]])) for label in labels]
        cells = [_cell([f[key] for f in fractions[label]]) for label in labels]
        diff = f"{signed(100 * (means[-1] - means[0]))}" if len(labels) > 1 else ""
        lines.append([text, *cells, diff])
    n = {label: found[label][0]["counts"]["instances"] for label in labels}
    lines.append(["rare objects per seed", *(n[label] for label in labels), ""])
    return markdown.table(["the best match on a rare glyph is", *head, "difference"], lines)


def _glyph(categories: dict, cid: str) -> str:
    entry = categories.get(str(cid)) or {}
    return entry.get("glyph") or entry.get("name") or str(cid)


def _merged(pools: dict[str, dict]) -> tuple[dict, dict]:
    """The categories and rare classes named by any model's pool (ids as strings)."""
    categories: dict = {}
    rare: dict = {}
    for p in pools.values():
        categories.update(p["categories"])
        rare.update(p["rare"])
    return categories, rare


def confusion_markdown(pools: dict[str, dict]) -> str:
    """One row per rare class: its look-alikes, objects (pooled over seeds), and per model the share
    whose best match is correct and the most common best-match class."""
    labels = list(pools)
    categories, rare = _merged(pools)
    head = [cell for label in labels for cell in (f"{label}: own class", f"{label}: most common best match")]
    lines = []
    for gt in sorted(rare, key=lambda g: (-rare[g]["instances"], _glyph(categories, g))):
        looks = " ".join(f"`{_glyph(categories, o)}`" for o, _ in rare[gt]["lookalikes"]) or "-"
        cells = []
        for label in labels:
            row = pools[label]["confusion"].get(gt, {})
            total = sum(row.values())
            if not total:
                cells += ["-", "-"]
                continue
            top, n = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            name = "missed" if top == "missed" else f"`{_glyph(categories, top)}`"
            cells += [f"{100 * row.get(gt, 0) / total:.0f} %", f"{name} ({100 * n / total:.0f} %)"]
        lines.append([f"`{_glyph(categories, gt)}`", looks, rare[gt]["instances"], *cells])
    return markdown.table(["rare glyph", "look-alikes", "objects", *head], lines, group=2)


def lookalike_figure(found: dict[str, list[dict]], pools: dict[str, dict]) -> Figure:
    """Left: share of rare objects per outcome and model (bars: mean over seeds; ticks: each seed).
    Right, one per model: the confusion matrix of rare rows (pooled over seeds, each row sums to 1);
    columns: the rare classes in row order (the diagonal: correct), then every other class some model
    predicted (frequent, then common, then rare), then missed."""
    labels = list(found)
    categories, rare = _merged(pools)
    rows = sorted(rare, key=lambda g: (_glyph(categories, g)))
    predicted = {k for p in pools.values() for row in p["confusion"].values() for k in row} - set(rows) - {"missed"}
    order = {"f": 0, "c": 1, "r": 2}
    cols = rows + sorted(predicted, key=lambda k: (order.get((categories.get(k) or {}).get("frequency"), 3),
                                                   _glyph(categories, k))) + ["missed"]
    fig = Figure(figsize=(max(3.2 + 0.12 * len(cols) + 0.6, 7.0), max((0.14 * len(rows) + 0.9) * len(labels) + 0.3, 4.0)),
                 layout="constrained")
    grid = fig.add_gridspec(len(labels), 2, width_ratios=[3.2, 0.12 * len(cols) + 0.6])
    ax = fig.add_subplot(grid[:, 0])
    width = 0.8 / len(labels)
    for m, label in enumerate(labels):
        fractions = [outcome_fractions(a) for a in found[label]]
        for k, (kind, _, colour) in enumerate(BAR_OUTCOMES):
            values = [100 * f[kind] for f in fractions]
            x = k + (m - (len(labels) - 1) / 2) * width
            ax.bar(x, np.mean(values), width * 0.9, color=colour, alpha=1.0 if m else 0.45,
                   edgecolor="black", lw=0.5, hatch="" if m else "//")
            ax.plot([x] * len(values), values, "k_", ms=6)
    ax.set_xticks(range(len(BAR_OUTCOMES)), [text for _, text, _ in BAR_OUTCOMES], fontsize=8)
    ax.set_ylabel("rare objects (%)")
    ax.set_title("best match on a rare glyph (colour: outcome)", fontsize=9)
    # the models differ by fill, not colour: the legend shows the fill on a neutral swatch
    ax.legend(handles=[Patch(facecolor="#bbbbbb", alpha=1.0 if m else 0.45, edgecolor="black", hatch="" if m else "//",
                             label=label) for m, label in enumerate(labels)], fontsize=7)
    for m, label in enumerate(labels):
        ax = fig.add_subplot(grid[m, 1])
        matrix = np.zeros((len(rows), len(cols)))
        for i, gt in enumerate(rows):
            row = pools[label]["confusion"].get(gt, {})
            total = sum(row.values())
            for j, pred in enumerate(cols):
                matrix[i, j] = row.get(pred, 0) / total if total else 0.0
        image = ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01, label="share of the row")
        for i, gt in enumerate(rows):  # look-alike cells outlined
            for o, _ in rare[gt]["lookalikes"]:
                if str(o) in cols:
                    j = cols.index(str(o))
                    ax.add_patch(_outline(j, i))
        ax.set_yticks(range(len(rows)), [_glyph(categories, g) for g in rows], fontsize=7, family="monospace")
        # rare columns by glyph (the diagonal); the other predicted classes by group, one label per span
        ticks = list(range(len(rows))) + [len(cols) - 1]
        names = [_glyph(categories, g) for g in rows] + ["∅"]
        start = len(rows)
        for group, name in (("f", "frequent"), ("c", "common"), ("r", "other rare")):
            span = [j for j in range(len(rows), len(cols) - 1)
                    if (categories.get(cols[j]) or {}).get("frequency") == group]
            if span:
                ticks.append((span[0] + span[-1]) / 2)
                names.append(f"{name} ({len(span)})")
                ax.axvline(span[-1] + 0.5, color="C0", lw=0.5, ls=":")
        ax.set_xticks(ticks, names, fontsize=7, family="monospace")
        for tick in ax.get_xticklabels()[len(rows) + 1:]:
            tick.set_family("sans-serif")
        ax.axvline(start - 0.5, color="C0", lw=0.8)
        ax.set_title(f"{label} ({pools[label]['seeds']} seed(s) pooled)", fontsize=8)
        ax.set_xlabel("class of the best match (∅: missed); red outline: a look-alike", fontsize=7)
    return fig


def _outline(j: int, i: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#d62728", lw=0.8)


def load_pair(root: str | Path = ".", params: dict | None = None) -> dict[str, list[dict]]:
    """{label: [lookalike.json of each of its runs that has one]} for the pair (questions.lookalike.pair)."""
    params = params if params is not None else read_params(Path(root) / "params.yaml")
    return {label: [a for a in (load_analysis(r, root) for r in names) if a] for label, names in pair_runs(params).items()}


def render(root: str | Path = ".", params: dict | None = None) -> Page:
    """The page from results/ below root; one sentence instead of tables and figures while no run of the
    pair has a lookalike.json."""
    from rog.report.detections import comparison_figure, load_sample

    params = params if params is not None else read_params(Path(root) / "params.yaml")
    runs = pair_runs(params)
    found = load_pair(root, params)
    parts = ["# Rare glyphs and their look-alikes: sigmoid CE vs sigmoid CE + GAP", INTRO]
    if not all(found.values()):
        absent = [r for names in runs.values() for r in names if load_analysis(r, root) is None]
        return Page(parts + [MISSING.format(runs=", ".join(absent) or "the pair's runs")])
    first = next(iter(found.values()))[0]
    pools = {label: pooled(a) for label, a in found.items()}
    parts += [f"Rule: {first['rule']}. Look-alikes: {first['lookalike_definition']}.",
              "## What the best match on a rare glyph is (percent of rare objects, mean ± sd over seeds)",
              rate_markdown(found), verdict(found), (NAME, lookalike_figure(found, pools)),
              "## Per rare class (pooled over seeds)", confusion_markdown(pools)]
    samples = {label: load_sample(names[0], root) for label, names in runs.items() if names}
    if all(samples.values()):
        parts += ["## Detections on validation images that hold rare glyphs (first seed of each)",
                  (f"{NAME}_detections", comparison_figure(samples, root))]
    return Page(parts)


def judged_difference(a: list[float], b: list[float]) -> str:
    """"+15.4, beyond 2 x noise = 3.1" for mean(b) - mean(a) of two models' per-seed shares (percent): the noise
    rule of rog.report.claims with the two models' seed sd pooled; without two seeds on either side, no noise."""
    diff = float(np.mean(b) - np.mean(a))
    spread = stats.pooled([a, b])
    if spread.sd is None:
        return say("lookalike.one_seed", diff=diff)
    found = stats.verdict(diff, stats.floor(spread.sd), (len(a), len(b)))   # the claims' rule, either direction
    return say("lookalike.judged", diff=diff, where="beyond" if found.real else "within", k=f"{stats.NOISE_K:g}",
               threshold=found.threshold)


def verdict(found: dict[str, list[dict]]) -> str:
    """One sentence: the own-class, frequent-class and look-alike shares of the two models' best matches
    (seed means, each difference judged against seed noise), and how often the own class was there but
    out-ranked."""
    labels = list(found)
    if len(labels) < 2:
        return ""

    def per_seed(label: str, keys: tuple[str, ...]) -> list[float]:
        return [100 * sum(outcome_fractions(a)[k] for k in keys) for a in found[label]]

    a, b = labels[0], labels[-1]
    keys = {"correct": ("correct",), "frequent": ("lookalike_f", "other_f"), "lookalike": ("lookalike",),
            "covered": ("covered",)}
    seeds = {label: {name: per_seed(label, k) for name, k in keys.items()} for label in (a, b)}
    share = {label: {name: float(np.mean(v)) for name, v in seeds[label].items()} for label in (a, b)}
    judged = {name: judged_difference(seeds[a][name], seeds[b][name]) for name in keys}
    return say("lookalike.verdict", first=a, second=b, a=share[a], b=share[b], judged=judged, k=f"{stats.NOISE_K:g}")


def shares(found: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per model label: the seed-mean share (percent) of rare objects whose first-ranked covering detection is
    their own class (correct), a look-alike's, another class's, none (missed), and whose own class is among
    the covering detections at any rank (covered)."""
    return {label: {key: float(np.mean([100 * outcome_fractions(a)[key] for a in analyses]))
                    for key in ("correct", "lookalike", "other", "missed", "covered")}
            for label, analyses in found.items() if analyses}


def answer(root: str | Path = ".", params: dict | None = None) -> dict | None:
    """The look-alike question as a record: {answer: "yes" when look-alikes take the first place on rare
    objects more often than other classes under the pair's first model (sigmoid CE), else "mostly_not";
    labels: (first, second); shares: shares()}; None while the pair has no lookalike.json."""
    found = load_pair(root, params)
    if len(found) < 2 or not all(found.values()):
        return None
    share = shares(found)
    first, second = list(found)[0], list(found)[-1]
    return {"answer": "yes" if share[first]["lookalike"] > share[first]["other"] else "mostly_not",
            "labels": (first, second), "shares": share}

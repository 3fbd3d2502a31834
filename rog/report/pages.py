"""Each table and figure of the compendium as one page: what its notebook shows and its stage writes.

    page = render(name)   # name: a key of params.yaml's tables or figures
    page.write()          # results/tables/NAME.md (and results/figures/NAME.png for a figure)
    page                  # in a notebook: the same markdown, the figure inline

A page: the paper's source of the table, the profile its runs were made with, which regime they come
from and what a 1x number means (rog.report.regime), ours beside the paper's,
and the verdicts of rog.report.claims. What else a page shows is declared in its params.yaml entry, never
chosen here by its name: `layout` (LAYOUTS: table, k_sweep, gradient_ratios, weight_norms, convergence),
`extras` (EXTRAS: the sections a table adds, e.g. gradient totals, the best setting per knob, a figure),
`drop_empty`, and `figure: true` for a page that draws one (so that dvc.yaml lists its PNG). Numbers
come from results/experiments/*/ below `root` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from rog.pipeline.registry import question, read_params, sections, table_runs
from rog.report import claims, figures, plots, stats, tables
from rog.report.openimages import openimages_section
from rog.report.prose import say
from rog.report.limits import learning_speed_markdown, regime_markdown
from rog.report.regime import older_runs, regime
from rog.report.results import paper_numbers, profiles_of

GRADIENT_TOTALS = (
    "## How hard each loss pushed the classifier\n\nGradient magnitude each loss sent to the class logits, "
    "summed over classes and the whole training (positive + negative parts, from each run's `diagnostics.json`), "
    "and the mean L2 norm of the classifier's class weights at the end. A ranking term normalized per class and "
    "weighted by omega (Eq. 8-9: the weights sum to C over *all* classes, so the few classes in a batch get a "
    "fraction) can send less gradient than AP loss, normalized by the batch's positives. If a small gradient "
    "were why GAP alone trains a weaker detector than AP loss, the *lambda 6* row above (six times the weight) "
    "would close the gap; the verdict below reads it.")


def write_page(root: str | Path, name: str, markdown: str, figures_by_stem: dict[str, Figure]) -> Path:
    """results/tables/NAME.md and each figure as results/figures/STEM.png below `root` (no timestamp in the
    PNG, so an unchanged figure is byte-identical); returns the markdown's path."""
    path = Path(root) / "results" / "tables" / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown)
    for stem, fig in figures_by_stem.items():
        png = Path(root) / "results" / "figures" / f"{stem}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100, metadata={"Software": None})
    return path


@dataclass
class Page:
    name: str
    parts: list[str]               # markdown blocks, in order
    figure: Figure | None = None

    def markdown(self) -> str:
        """The page as results/tables/NAME.md holds it (a figure as a link to results/figures/NAME.png)."""
        image = [f"![{self.name}](../figures/{self.name}.png)"] if self.figure is not None else []
        return "\n\n".join([*self.parts, *image]).rstrip("\n") + "\n"

    def write(self, root: str | Path = ".") -> Path:
        """Write results/tables/NAME.md (and the figure's PNG) below `root`; returns the markdown's path."""
        return write_page(root, self.name, self.markdown(), {self.name: self.figure} if self.figure else {})

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        display(Markdown("\n\n".join(self.parts)))
        if self.figure is not None:
            display(self.figure)


def _head(params: dict, name: str, source: str, root: str | Path, title: str | None = None) -> list[str]:
    """Title (paper_numbers' `title`; the page name without one), the paper's caption as the paper's, the runs'
    profile, which regime they come from and what a 1x number means."""
    runs = table_runs(params, name)
    found = regime(params, root, runs)
    head = [f"# {title or name}", f"Our runs beside the paper's: {source}", tables.profile_note(profiles_of(runs, root)), regime_markdown(found, "of this page")]
    if found["runs"]:
        head.append(learning_speed_markdown(params, root, found["runs"]))
    return head


def _capitalized(text: str) -> str:
    """First letter up, the rest kept ("box AP" -> "Box AP"; str.capitalize would give "Box ap")."""
    return text[:1].upper() + text[1:]


def _iou_sentence(iou: str, why: str) -> str:
    return say("pages.figure_plots", why=why)


def table_page(params: dict, name: str, root: str | Path, paper: dict) -> Page:
    """A table beside the paper's with its claims, then the sections its params.yaml entry names in
    `extras` (EXTRAS), in that order; `drop_empty: true` drops the columns without a number."""
    section = sections(params)[name]
    table = tables.build(params, name, root, paper)
    found = claims.claims(params, root, paper, tables=[name])
    parts = [*_head(params, name, table.source, root, (paper.get(name) or {}).get("title")), *table.notes, "## Ours beside the paper's",
             tables.markdown(table, drop_empty=bool(section.get("drop_empty"))), "## What reproduced",
             claims.claims_markdown(found)]
    figure = None
    for extra in section.get("extras") or []:
        if extra not in EXTRAS:
            raise ValueError(f"params.yaml tables.{name}.extras: unknown section '{extra}'; valid: {', '.join(EXTRAS)}")
        more, drawn = EXTRAS[extra](params, name, root, paper, table)
        parts += more
        figure = drawn if drawn is not None else figure
    return Page(name, parts, figure)


def _labels(table: tables.Table) -> dict[str, str]:
    return {row.key: row.label for row in table.rows}


def gradient_totals_section(params: dict, name: str, root: str | Path, paper: dict, table: tables.Table):
    """How hard each loss pushed the classifier (the runs' diagnostics.json), and the magnitude verdict."""
    totals = figures.gradient_totals(params, name, root)
    return [GRADIENT_TOTALS, figures.gradient_totals_markdown(totals, _labels(table)),
            claims.gradient_magnitude_verdict(totals, params, root, **magnitude_rows(params))], None


def best_per_knob_section(params: dict, name: str, root: str | Path, paper: dict, table: tables.Table):
    return ["## Best setting per swept knob", best_per_knob(table, params, root)], None


def sweep_figure_section(params: dict, name: str, root: str | Path, paper: dict, table: tables.Table):
    """AP and its frequency groups against each swept knob, the paper's setting marked and its seed spread
    shaded, the knob switched off as a reference; the settings whose group AP falls beyond noise below the
    paper's setting, named."""
    iou, why = figures.figure_iou(params, name, root)
    series = figures.sweep_series(params, root, iou, name)
    default = series["default"]
    sds = {m: claims.seed_sd(params, f"{iou}.{m}", root) for m in ("APr", "APc", "APf")}
    found = figures.sweep_drops(series, sds, regime(params, root))
    drops, apart = [d for d in found if "older" not in d], [d for d in found if "older" in d]
    seeds = say("sweeps.seeds", n=len(default["runs"])) if default else say("sweeps.no_seeds")
    text = _iou_sentence(iou, why) + " " + say("sweeps.figure", seeds=seeds)
    lines = [say("sweeps.drop", k=f"{stats.NOISE_K:g}", **d) for d in drops]
    fallen = (say("sweeps.drops") + "\n\n" + "\n".join(lines) if lines else say("sweeps.no_drops"))
    if apart:
        fallen += "\n\n" + say("sweeps.not_comparable", settings="; ".join(
            f"{d['knob']} {d['value']:g} ({', '.join(d['older'])})" for d in apart))
    return ["## AP against each knob", text, fallen], plots.plot_sweeps(series, iou)


def openimages_extra(params: dict, name: str, root: str | Path, paper: dict, table: tables.Table):
    """Which data each number comes from; real OpenImages runs when present (rog.report.openimages)."""
    return openimages_section(params["tables"].get(name), paper.get(name) or {}, root), None


def seed_strip_section(params: dict, name: str, root: str | Path, paper: dict, table: tables.Table):
    """The rows with several seeds, seed by seed."""
    iou, why = figures.figure_iou(params, name, root)
    series = figures.seed_series(params, root, iou, name)
    return ["## The headline rows, seed by seed", _iou_sentence(iou, why) + " Each dot is one seed, the "
            "bar their mean: how far apart seeds of the same setting land, beside the differences the "
            "claims judge." + ("" if series else " No row with several seeds has results yet.")], \
        plots.plot_seed_strip(series, _labels(table), iou)


# the sections a table page may add after its claims (params.yaml tables.NAME.extras): name -> function of
# (params, name, root, paper, table) returning (markdown blocks, figure or None)
EXTRAS = {"gradient_totals": gradient_totals_section, "best_per_knob": best_per_knob_section,
          "sweep_figure": sweep_figure_section, "openimages": openimages_extra, "seed_strip": seed_strip_section}


def magnitude_rows(params: dict) -> dict[str, str]:
    """The gradient magnitude check's rows (questions.gap_alone.magnitude: gap, louder, reference) as row keys."""
    return {role: ref.partition("/")[2] for role, ref in (question(params, "gap_alone").get("magnitude") or {}).items()}


def best_per_knob(table: tables.Table, params: dict, root: str | Path,
                  knobs=("delta", "gamma", "lambda")) -> str:
    """One line per swept knob: the setting with the highest AP (the claims' metric) among those run, against
    the paper's setting (the knob's row with the most seeds), judged by the noise rule."""
    iou, _ = claims.choose_iou([r for row in table.rows for r in row.found], root)
    path = f"{iou}.AP"
    col, name = table.metrics.index(path), claims.metric_name(path)
    sd = claims.seed_sd(params, path, root)
    found_regime = regime(params, root)
    lines = []
    for knob in knobs:
        rows = [r for r in table.rows if r.key.startswith(knob + "/") and r.ours[col] is not None]
        if not rows:
            lines.append(say("knobs.none", knob=knob))
            continue
        setting = (sections(params)[table.name].get("setting") or {}).get(knob)
        paper = next((r for r in rows if setting is not None and float(r.key.split("/")[1]) == float(setting)),
                     max(rows, key=lambda r: len(r.found)))
        rows = [r for r in rows if float(r.key.split("/")[1]) != 0 or r is paper]   # the knob off is no setting
        best = max(rows, key=lambda r: r.ours[col])
        head = say("knobs.best", knob=knob, name=name, ap=best.ours[col], label=best.label, settings=len(rows))
        others = [r for r in rows if r is not paper]
        if len(paper.found) < 2 or not others:
            lines.append(head)
            continue
        rival = best if best is not paper else max(others, key=lambda r: r.ours[col])
        older = older_runs(found_regime, rival.found + paper.found)
        if older:   # two regimes: not like with like, so no verdict
            lines.append(say("knobs.not_comparable", head=head, rival=rival.label, paper=paper.label,
                             older=", ".join(older)))
            continue
        diff = rival.ours[col] - paper.ours[col]
        found = stats.verdict(diff, sd, (len(rival.found), len(paper.found)))
        judged = say("knobs.judged", where="beyond" if found.real else "within", k=f"{stats.NOISE_K:g}",
                     threshold=found.threshold, n_rival=len(rival.found), n_paper=len(paper.found))
        lines.append(say("knobs.paper_best", head=head, rival=rival.label, diff=diff, judged=judged) if best is paper
                     else say("knobs.other_best", head=head, diff=diff, paper=paper.label, judged=judged))
    return "\n".join(lines) + "\n"


def k_sweep_page(params: dict, name: str, root: str | Path, paper: dict) -> Page:
    """Table 3: AP against the per-image detection budget K."""
    sweep = tables.build_k_sweep(params, root, paper)
    labels = {key: row["label"] for key, row in paper[name]["rows"].items()}
    series = figures.k_sweep_series(params, root, sweep["iou"], name)
    wanted = max(params["evaluate"]["max_dets_sweep"])
    reached = max(sweep["k"], default=0)
    later = ([f"Our runs reach K = {reached}; params.yaml's evaluate.max_dets_sweep goes up to K = {wanted}."]
             if sweep["k"] and reached < wanted else [])
    return Page(name, [*_head(params, name, sweep["source"], root, paper[name].get("title")), f"Note: {sweep['note']}",
                       "## Ours beside the paper's", tables.k_sweep_markdown(sweep), say("tables.k_gain"),
                       "## AP against K", f"{_capitalized(figures.IOU_NAMES[sweep['iou']])} per frequency group and overall; "
                       "line: the mean over seeds, band: min to max over seeds.", *later,
                       "## What reproduced", claims.k_sweep_claim(sweep, root, paper)],
                plots.plot_ap_vs_k(series, labels, sweep["iou"]))


def figure4_page(params: dict, name: str, root: str | Path, paper: dict) -> Page:
    """Figure 4: positive/negative gradient ratio per class of each ranking loss trained alone."""
    labels = {k: v["label"] for k, v in paper[name]["rows"].items()}
    series = figures.gradient_series(params, root, name)
    rows = figures.balance_rows(series, "ratio")
    spread = figures.log_balance_spread(params, root, "ratio", source="gap")   # the ranking term's ratio
    balance = paper[name]["balance"]  # the paper's claim: `method` more balanced than each of `baselines`
    verdicts = [claims.balance_verdict(rows, baseline, balance["method"], "positive/negative gradient ratio", spread)
                for baseline in balance["baselines"]]
    return Page(name, [*_head(params, name, paper[name]["source"], root, paper[name].get("title")), paper[name].get("note", ""),
                       "## Balance: group means of the ratio", figures.balance_markdown(rows, labels, "gradient ratio"),
                       "## What reproduced", *verdicts], plots.plot_gradient_ratios(series, labels))


def figure5_page(params: dict, name: str, root: str | Path, paper: dict) -> Page:
    """Figure 5: classifier weight norms and per-class AP, sigmoid CE against ROG."""
    labels = {k: v["label"] for k, v in paper[name]["rows"].items()}
    iou, why = figures.figure_iou(params, name, root)
    series = figures.weight_norm_series(params, root, name, iou)
    norms, aps = figures.balance_rows(series, "norm"), figures.balance_rows(series, "ap")
    balance = paper[name]["balance"]  # the paper's claim: `method` more balanced than `baselines`
    verdicts = [verdict for baseline in balance["baselines"] for verdict in (
        claims.balance_verdict(norms, baseline, balance["method"], "classifier weight norms",
                               figures.log_balance_spread(params, root, "norm")),
        claims.balance_verdict(aps, baseline, balance["method"], f"per-class {figures.IOU_NAMES[iou]}",
                               figures.log_balance_spread(params, root, "ap", iou=iou)))]
    note = (f"Per-class AP here is {why}. Panel (c) plots it against the class's "
            "training image count (metrics.json's train_image_count, LVIS's frequency measure), log x.")
    return Page(name, [*_head(params, name, paper[name]["source"], root, paper[name].get("title")), paper[name].get("note", ""), note,
                       "## Balance of weight norms and of AP", figures.balance_markdown(norms, labels, "weight norm"),
                       figures.balance_markdown(aps, labels, "AP"), "## What reproduced", *verdicts],
                plots.plot_weight_norms_and_ap(series, labels))


def convergence_page(params: dict, name: str, root: str | Path, paper: dict) -> Page:
    """Learning curves of the 2x runs and the 1x-against-2x check (not in the paper)."""
    labels = {k: v["label"] for k, v in paper[name]["rows"].items()}
    data = figures.convergence_curves(params, labels, name, root)
    missing = ([f"No curve.json yet for {', '.join(data['missing'])}: the figure leaves them out "
                "(make them with `dvc repro experiment@RUN`)."] if data["missing"] else [])
    rows = figures.convergence_rows(params, name, root)
    return Page(name, [*_head(params, name, paper[name]["source"], root, paper[name].get("title")), *missing, "## 1x against 2x",
                       figures.convergence_markdown(rows, labels), "## Verdict", claims.convergence_verdict(rows)],
                plots.learning_curves(data["curves"], data["ends"], data["lr_drops"]))


# a page's layout (params.yaml tables.NAME.layout or figures.NAME.layout; default: table)
LAYOUTS = {"table": table_page, "k_sweep": k_sweep_page, "gradient_ratios": figure4_page,
           "weight_norms": figure5_page, "convergence": convergence_page}


def render(name: str, root: str | Path = ".", params: dict | None = None, paper: dict | None = None) -> Page:
    """The page of table or figure `name` from the results below `root` (params: root/params.yaml), drawn by
    the layout its entry names."""
    params = params if params is not None else read_params(Path(root) / "params.yaml")
    paper = paper if paper is not None else paper_numbers()
    if name not in sections(params):
        raise ValueError(f"no table or figure '{name}' in params.yaml; valid: {', '.join(sections(params))}")
    layout = sections(params)[name].get("layout", "table")
    if layout not in LAYOUTS:
        raise ValueError(f"params.yaml {name}.layout: unknown layout '{layout}'; valid: {', '.join(LAYOUTS)}")
    return LAYOUTS[layout](params, name, root, paper)

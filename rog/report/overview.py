"""The overview page: the paper told as an abstract, from results/ (notebooks/overview.ipynb, stage overview).

    page = build(root=".")   # an Overview: Markdown blocks and figures, in reading order
    page                     # in a notebook: the blocks, the figures inline
    page.tables()            # the header cells of every Markdown table (tests: at most MAX_COLUMNS each)

Sections, each computed from params.yaml, paper_numbers.yaml and results/experiments/*/ below `root`:
the question; the setup (LT-Glyphs against LVIS v1: categories, images, detector, schedule); the
headline figure (rare AP per Table 1 row, every seed a dot, the paper's beside); the claims (each pair
of runs as our difference beside the paper's, its verdict by rog.report.claims' noise rule; a table and
a dot plot); the look-alike result (rog.report.lookalike); where we disagree and what explains it; the
open questions (GAP alone: omega starvation or schedule; EQLv2 below CE; GAP's gain under SGD against
AdamW), answered from their registry runs when results/ has them; the limits (which
regime results/ holds, learning speed, seeds, scale). Full tables live in the table notebooks: no table
here is wider than MAX_COLUMNS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from pathlib import Path

from matplotlib.figure import Figure

from rog.pipeline.registry import pair_runs, question, read_params, run_names, sections
from rog.report import claims, figures, markdown, plots, stats, tables
from rog.report.markdown import signed
from rog.report.limits import epochs_text, learning_speed_markdown, regime_markdown
from rog.report.regime import regime
from rog.report.results import aggregate, load_diagnostics, load_metrics, paper_numbers, profiles_of, value

GROUP_NAMES = {"r": "rare", "c": "common", "f": "frequent"}
K = f"{stats.NOISE_K:g}"  # the noise rule's factor as sentences write it (rog.report.stats)
MAX_COLUMNS = markdown.MAX_COLUMNS
QUESTION = (
    "# ROG and the GAP loss, checked at small scale\n\n"
    "**The question.** *Reconciling Object-Level and Global-Level Objectives for Long-Tail Detection* (ROG, "
    "ICCV 2023) argues that a long-tailed detector misses rare objects not only because it misclassifies "
    "them, but because it ranks them: a rare object's score is low against other images' objects of the same "
    "class, and the per-image budget of K detections drops it. It adds a category-specific ranking loss with "
    "class weights, the generalized average precision (GAP) loss, to any classification loss, and reports "
    "higher rare AP (APr) for every objective on LVIS v1. Does that hold when the whole study is re-run, "
    "on a small long-tailed dataset and a CPU detector, and where it does not, why?")


@dataclass
class Overview:
    blocks: list = field(default_factory=list)  # str (Markdown) or matplotlib Figure, in order

    @property
    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]

    def markdown(self) -> str:
        return "\n\n".join(b for b in self.blocks if isinstance(b, str)).rstrip("\n") + "\n"

    def tables(self) -> list[list[str]]:
        """The header cells of every Markdown table of the page."""
        out = []
        for block in self.blocks:
            if not isinstance(block, str):
                continue
            lines = block.splitlines()
            for i, line in enumerate(lines[:-1]):
                if line.startswith("|") and set(lines[i + 1].replace("|", "").strip()) <= set("-: ") \
                        and lines[i + 1].startswith("|---"):
                    out.append([c.strip() for c in line.strip().strip("|").split("|")])
        return out

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        for block in self.blocks:
            display(Markdown(block) if isinstance(block, str) else block)


def _table(head: list[str], rows: list[list[str]]) -> str:
    return markdown.table(head, [[str(c).replace("|", "/") for c in row] for row in rows])


def _f(x: float | None, digits: int = 1, signed: bool = False) -> str:
    if x is None:
        return "-"
    return markdown.signed(x, digits) if signed else f"{x:.{digits}f}"


def _mean(runs: list[str], path: str, root: str | Path) -> tuple[float | None, int]:
    mean, _, n = aggregate([value(load_metrics(r, root), path) for r in runs])
    return mean, n


# ---- setup ---------------------------------------------------------------------------------------------
def _dataset_facts(runs: list[str], root: str | Path) -> dict | None:
    """Categories per frequency group and training image counts, from a run's per-category metrics."""
    for run in runs:
        per_cat = ((load_metrics(run, root) or {}).get("bbox") or {}).get("per_category") or []
        if per_cat and all("frequency" in c and "train_image_count" in c for c in per_cat):
            counts = {g: sum(c["frequency"] == g for c in per_cat) for g in "rcf"}
            images = [int(c["train_image_count"]) for c in per_cat]
            return {"categories": counts, "min_images": min(images), "max_images": max(images),
                    "image_counts": images, "frequency": [c["frequency"] for c in per_cat]}
    return None


def omega_by_group(facts: dict, gamma: float = 1.0) -> dict[str, float]:
    """Mean omega of Eq. 9 per frequency group, from the training image counts (the online counts of
    positive RoIs track instance counts; image counts order classes the same way)."""
    import torch

    counts = torch.tensor(facts["image_counts"], dtype=torch.float64)
    return {r["group"]: r["mean"] for r in figures.omega_groups(counts, facts["frequency"], (gamma,))}


def all_current(params: dict, root: str | Path, runs: list[str]) -> bool:
    """Whether every one of `runs` was made with the params params.yaml gives now (results/freshness.json)."""
    found = regime(params, root, runs)
    return len(found["same"]) == len(found["runs"])


def setup_markdown(params: dict, root: str | Path, paper: dict) -> str:
    """The two settings side by side: LVIS v1 with the paper's detector, LT-Glyphs with ours."""
    from rog.config import resolve_run

    spec = paper["setup"]
    profile = params.get("profile")
    run = question(params, "setup").get("run")
    ours = resolve_run(params, profile, run if run in (params.get("experiments") or {}) else None)
    paper_profile = question(params, "setup").get("paper_profile")
    theirs = resolve_run(params, paper_profile) if paper_profile in (params.get("profiles") or {}) else None
    runs = [r for r in run_names(params) if load_metrics(r, root) is not None]
    facts = _dataset_facts(runs, root)
    glyphs = ours["dataset"]["glyphs"]
    iterations = sorted({int(m["run"]["iterations"]) for m in (load_metrics(r, root) for r in runs)
                         if m and (m.get("run") or {}).get("iterations")})
    batch = int(ours["train"]["batch_size"])
    cats = spec["categories"]

    def backbone(p: dict) -> str:
        b = p["model"]["backbone"]
        if b["name"] == "tiny":
            start = "detector pretrained on disjoint glyphs" if p["model"].get("weights") else "from scratch"
            return f"tiny CNN (widths {'-'.join(map(str, b['widths']))}), {start}"
        return f"{b['name']}, {'ImageNet-pretrained' if b.get('pretrained') else 'from scratch'}"

    rows = [["categories (r / c / f)", f"{sum(cats.values()):,} ({cats['r']} / {cats['c']} / {cats['f']})",
             (f"{sum(facts['categories'].values())} ({facts['categories']['r']} / {facts['categories']['c']} / "
              f"{facts['categories']['f']})" if facts else "-")],
            ["training images per category", spec["rare"],
             f"{facts['min_images']}-{facts['max_images']:,} (r/c/f as LVIS)" if facts else "-"],
            ["training / validation images", f"{spec['train_images']:,} / {spec['val_images']:,}",
             f"{glyphs['num_train']:,} / {glyphs['num_val']:,} + extra until each category has "
             f"{glyphs['min_val_images']}" + ("" if all_current(params, root, runs) else " (params.yaml now)")]]
    if theirs is not None:
        sizes = theirs["dataset"]["resize_min_size"]
        rows.append(["image size", f"shorter side {min(sizes)}-{max(sizes)}, longer <= {theirs['dataset']['resize_max_size']}",
                     f"{ours['model']['min_size']} x {ours['model']['max_size']} (rendered glyphs)"])
        rows.append(["detector", f"Mask R-CNN, {backbone(theirs)}", f"Mask R-CNN, {backbone(ours)}"])
    one_x = [r for r in runs if (load_metrics(r, root) or {}).get("run", {}).get("iterations") == iterations[0]] \
        if iterations else []
    rows.append(["schedule (1x)", f"{spec['epochs']} epochs, SGD, LR {spec['lr']:g}",
                 f"{iterations[0]:,} iterations x {batch} images = {epochs_text(params, root, one_x)} "
                 f"epochs (results/), SGD" if iterations else "-"])
    text = _table(["", spec["dataset"] + " (the paper)", "LT-Glyphs (ours)"], rows)
    return ("## The setup\n\n" + text + "\nLT-Glyphs is rendered text, one category per character, with the "
            "frequencies of real English (the `dataset` notebook); it needs no download. The code runs the "
            f"paper's setting too (profile `{paper_profile}`), but nothing here was run on it. Compare directions "
            "and sizes of effects with the paper's, not values: the paper's AP is mask AP on LVIS, ours is read "
            "as the claims say (box AP where our masks are not learned).")


# ---- the headline figure: rare AP per Table 1 row ------------------------------------------------------
def rare_ap_rows(params: dict, root: str | Path, paper: dict) -> tuple[list[dict], str]:
    """Per Table 1 row with results: {label, gap, seeds: [APr per run], mean, sd, paper}; and the iou."""
    table = tables.build(params, "table1", root, paper)
    runs = [r for row in table.rows for r in row.found]
    iou, _ = claims.choose_iou(runs, root) if runs else ("bbox", "")
    paper_col = table.metrics.index("segm.APr")
    out = []
    for row in table.rows:
        seeds = [v for v in (value(load_metrics(r, root), f"{iou}.APr") for r in row.found) if v is not None]
        if not seeds:
            continue
        mean, sd, _ = aggregate(seeds)
        out.append({"label": row.label, "gap": row.label.endswith("+ GAP"), "seeds": seeds, "mean": mean, "sd": sd,
                    "paper": row.paper[paper_col]})
    return out, iou


def rare_ap_sentence(rows: list[dict], sd: float) -> str:
    """How many of Table 1's objectives gain rare AP with GAP, ours (seed means; how many beyond 2 x the noise
    of the difference, `sd` the pooled seed sd of APr) and the paper's; only objectives whose row and
    "+ GAP" row both have results count."""
    by_label = {r["label"]: r for r in rows}
    pairs = [(r, by_label[r["label"] + " + GAP"]) for r in rows if not r["gap"] and r["label"] + " + GAP" in by_label]
    if not pairs:
        return "No objective has both its row and its + GAP row in results/ yet."
    ours = sum(g["mean"] > b["mean"] for b, g in pairs)
    beyond = sum(stats.verdict(g["mean"] - b["mean"], sd, (len(b["seeds"]), len(g["seeds"]))).status == "reproduced"
                 for b, g in pairs)
    with_paper = [(b, g) for b, g in pairs if b["paper"] is not None and g["paper"] is not None]
    theirs = sum(g["paper"] > b["paper"] for b, g in with_paper)
    return (f"With GAP our mean APr is higher for {ours} of the {len(pairs)} objectives run, by more than "
            f"{stats.NOISE_K:g} x the noise of the difference for {beyond} (seed sd {sd:.2f} APr pooled over the "
            f"multi-seed rows, x sqrt(1/n_a + 1/n_b)); the paper's is higher for {theirs} of {len(with_paper)}.")


# ---- the claims ----------------------------------------------------------------------------------------
def claim_rows(found: list[dict], sweep_claim: dict | None) -> list[dict]:
    """One entry per judged pair (claims with several pairs give several), Table 3's as one more."""
    out = []
    for c in found:
        for i, p in enumerate(c["pairs"]):
            out.append({"claim": c["text"] if i == 0 else "", "id": c["id"], "table": c["table"], "keys": p["keys"],
                        "iou": p.get("iou", c["iou"]),
                        "pair": f"{p['better']} vs {p['worse']}",
                        "metric": p["metric"], "paper_metric": p["paper_metric"], "ours": p["ours"],
                        "paper": p["paper"], "threshold": p["threshold"], "status": p["status"]})
    if sweep_claim is not None and sweep_claim["status"] != "not checked":
        out.append({"claim": "The baseline's rare AP depends more on K than ROG's (Table 3)", "id": "k_sweep",
                    "table": "table3", "keys": None, "base": sweep_claim["base"], "rog": sweep_claim["rog"],
                    "pair": f"RFS vs ROG, K {sweep_claim['k']} of {sweep_claim['k_big']}",
                    "metric": f"% of {claims.IOU_NAMES[sweep_claim['iou']]} APr missed",
                    "paper_metric": f"% of {claims.IOU_NAMES[sweep_claim['iou']]} APr missed (K 50 of 100)",
                    "ours": sweep_claim["ours"], "paper": sweep_claim["paper"], "threshold": sweep_claim["threshold"],
                    "status": sweep_claim["status"]})
    return out


def claims_markdown(rows: list[dict]) -> str:
    head = ["claim", "pair (better vs worse)", "ours", "paper", f"{K} x noise", "verdict"]
    def apart(r: dict) -> int:  # decimals at which ours and the threshold print apart (borderline verdicts)
        if r["ours"] is None or r["threshold"] is None:
            return 1
        return markdown.digits_apart(r["ours"], r["threshold"])

    body = [[r["claim"], r["pair"], f"{_f(r['ours'], apart(r), signed=True)} {r['metric']}",
             f"{_f(r['paper'], signed=True)} {r['paper_metric']}" if r["paper"] is not None else "-",
             _f(r["threshold"], apart(r)), f"**{r['status']}**"] for r in rows]
    rule = (f"Each pair's verdict: **reproduced** when our difference goes the claim's way (better > worse) and "
            f"exceeds {stats.NOISE_K:g} x its noise, **opposite** when it exceeds it the other way, **within noise** "
            f"otherwise. The noise of a difference is the seed sd pooled over the registry's multi-seed rows "
            f"(per metric) x sqrt(1/n_a + 1/n_b); for Table 3, the sd of the share of rare AP a smaller K misses, "
            f"pooled over the seeds of its two rows. Differences are in AP points (Table 3: percentage points); ours "
            f"on LT-Glyphs, the paper's on LVIS v1. Every pair with its noise: the table notebooks, or "
            f"`python -m rog report claims`.")
    return "## The claims, checked\n\n" + rule + "\n\n" + _table(head, body)


# ---- disagreements, open questions, limits -------------------------------------------------------------
def _box(run: str, root: str | Path, metric: str = "AP", iou: str = "bbox") -> float | None:
    return value(load_metrics(run, root), f"{iou}.{metric}")


def _sd(params: dict, path: str, root: str | Path) -> float:
    return stats.floor(claims.pooled_spread(params, path, root)["sd"])


def _baseline_reasons(r: dict, params: dict, root: str | Path) -> list[str]:
    """For a "GAP improves every objective" pair not reproduced: whether the objective without GAP already
    beats sigmoid CE of the same sampling (less left for GAP to add), and where its rare AP went."""
    table = tables.build(params, r["table"], root)
    metric = claims.metric_name(r["iou"] + ".AP")
    better, worse = (_mean(table.row(k).found, f"{r['iou']}.APr", root)[0] for k in r["keys"])
    base = _mean(table.row(r["keys"][1]).found, f"{r['iou']}.AP", root)[0]
    sampler = r["keys"][1].split("/")[0]
    ce_key = f"{sampler}/{question(params, 'baseline').get('objective')}"
    ce_row = table.row(ce_key) if ce_key in {x.key for x in table.rows} else None
    ce = _mean(ce_row.found, f"{r['iou']}.AP", root)[0] if ce_row is not None else None
    out = []
    if base is not None and ce is not None and base >= ce:
        out.append(f"without GAP it already reaches {base:.1f} {metric} ({ce_row.label} {ce:.1f}), leaving less "
                   "for GAP to add" + ("; less room explains a smaller gain, not this loss, which stays unexplained"
                                       if r["status"] == "opposite" else ""))
    if better is not None and worse is not None:
        out.append(f"its rare AP ({claims.IOU_NAMES.get(r['iou'], r['iou'])} APr) moves {signed(better - worse)} "
                   f"({worse:.1f} -> {better:.1f})")
    return out


def disagreements_markdown(rows: list[dict], params: dict, root: str | Path) -> str:
    """The pairs not reproduced, each with what explains it (computed where the runs allow)."""
    lines = []
    for r in rows:
        if r["status"] in ("reproduced", "not run", "not comparable"):
            continue
        why = []
        if r["paper"] is not None and r["threshold"] is not None and abs(r["paper"]) <= r["threshold"]:
            why.append(f"the paper's own effect ({signed(r['paper'])}) is smaller than our noise threshold "
                       f"({r['threshold']:.1f}): our seeds cannot resolve it")
        if r["id"] == "gap_helps_every_objective" and r["keys"]:
            why += _baseline_reasons(r, params, root)
        if r["id"] == "ranking_losses_lag_on_rare":
            alone_runs = question(params, "gap_alone").get("runs") or {}
            alone, ap_loss = (_box(alone_runs[k], root, "AP", r["iou"]) if alone_runs.get(k) else None for k in ("g1", "ap"))
            if alone is not None and ap_loss is not None and alone < claims.MASK_SHARE * ap_loss:
                why.append(f"GAP alone trains a far weaker detector here ({alone:.1f} vs AP loss alone's {ap_loss:.1f} "
                           f"{claims.metric_name(r['iou'] + '.AP')}; the open question below)")
        if r["id"] == "k_sweep" and min(r["base"], r["rog"]) >= 95:
            why.append(f"both detectors rank (nearly) all their rare hits below the {r['pair'].split('K ')[1].split()[0]}-th "
                       "detection of their image, so this K cannot tell them apart")
        lines.append(f"- **{r['status']}**: {r['pair']}: ours {signed(r['ours'])} {r['metric']}, paper "
                     + (f"{signed(r['paper'])}" if r["paper"] is not None else "-") + (f"; {'; '.join(why)}." if why else "."))
    if not lines:
        return "## Where we disagree\n\nEvery pair that ran reproduced."
    return "## Where we disagree, and why\n\n" + "\n".join(lines)


def lookalike_markdown(params: dict, root: str | Path) -> str:
    """The paper's thesis measured directly: rare glyphs out-ranked by look-alikes, CE against CE + GAP."""
    from rog.report import lookalike

    found = lookalike.summary_sentence(root, params) if pair_runs(params) else None
    return ("## Are rare glyphs out-ranked by their look-alikes?\n\n"
            + (found + " Per seed, the confusion matrix and drawn detections: [lookalike](lookalike.ipynb)."
               if found else "The look-alike analysis (for each rare ground-truth glyph, the class of the detection "
               "ranked first on it; sigmoid CE against CE + GAP) needs the runs' lookalike.json, which these results "
               "lack ([lookalike](lookalike.ipynb))."))


def _key(ref: str) -> tuple[str, str]:
    """'TABLE/ROW' (a row as questions name it) -> (TABLE, ROW)."""
    table, _, key = ref.partition("/")
    return table, key


def gap_alone_markdown(params: dict, root: str | Path) -> str:
    """GAP alone: omega starvation or learning speed? From questions.gap_alone's runs: GAP at gamma 1 (g1) and
    gamma 0 (g0), their 2x runs, AP loss alone (ap); and its rows for the gradient magnitude check."""
    spec = question(params, "gap_alone")
    runs = spec["runs"]
    iou = claims.choose_iou(list(runs.values()), root)[0]
    name = claims.metric_name(f"{iou}.AP")
    ap = {k: _box(r, root, "AP", iou) for k, r in runs.items()}
    apf = {k: _box(r, root, "APf", iou) for k, r in runs.items()}
    facts = _dataset_facts([r for r in run_names(params) if load_metrics(r, root) is not None], root)
    text = ["### GAP alone: omega starvation or learning speed?", ""]
    if ap["g1"] is None or ap["g0"] is None:
        return "\n".join(text + [f"Not run yet: needs {runs['g1']} and {runs['g0']} (Table 2's rows)."])
    frequent = {k: f" (APf {v:.1f})" if v is not None else "" for k, v in apf.items()}
    omega = omega_by_group(facts) if facts else None
    text.append(
        f"Trained alone (no classification loss) with the paper's gamma 1, GAP reaches {name} {ap['g1']:.1f}"
        f"{frequent['g1']}; with gamma 0 (omega 1 for every class) {ap['g0']:.1f}{frequent['g0']}"
        + (f"; AP loss alone {ap['ap']:.1f}" if ap["ap"] is not None else "") + "."
        + (f" Eq. 9 with gamma 1 gives the frequent classes a mean omega of {omega['f']:.3f} here (rare "
           f"{omega['r']:.2f}; from the training image counts), and with no classification loss nothing else "
           "trains them." if omega else ""))
    magnitude = {role: _key(ref) for role, ref in (spec.get("magnitude") or {}).items()}
    table = next(iter({t for t, _ in magnitude.values()}), None)
    if table in sections(params):
        text.append("\nIs it only that GAP's gradient is small (omega and per-class normalisation)? "
                    + claims.gradient_magnitude_verdict(figures.gradient_totals(params, table, root), params, root,
                                                        **{role: key for role, (_, key) in magnitude.items()}))
    sd = _sd(params, f"{iou}.AP", root)
    if ap["g1_2x"] is None or ap["g0_2x"] is None:
        text.append(f"\nWhether that is starvation or only learning speed is what `{runs['g1_2x']}` and "
                    f"`{runs['g0_2x']}` (registered, 2x schedule) answer: **not in results/ yet** "
                    f"(`dvc repro experiment@{runs['g1_2x']} experiment@{runs['g0_2x']}`, or `make "
                    "open_questions` in a copy).")
        return "\n".join(text)
    gap1, gap2 = ap["g0"] - ap["g1"], ap["g0_2x"] - ap["g1_2x"]
    single = stats.threshold(stats.noise(sd, 1, 1))        # a difference of two one-seed runs
    double = stats.threshold(stats.noise(sd, 1, 1, 1, 1))  # a difference of two such differences
    if gap2 < -single:
        answer = "**schedule**: at 2x, gamma 1 is ahead of gamma 0 beyond noise; omega starvation only slowed the frequent classes"
    elif abs(gap2) <= single:
        answer = "**schedule**: at 2x, gamma 1 is within noise of gamma 0; omega starvation only slowed the frequent classes"
    elif gap1 - gap2 > double:
        answer = "**both**: the schedule closes part of the gap, but gamma 1 stays behind gamma 0 at 2x"
    else:
        answer = "**starvation**: the gap between gamma 1 and gamma 0 does not shrink with the schedule"
    text.append(f"\nAt 2x: gamma 1 {ap['g1_2x']:.1f}, gamma 0 {ap['g0_2x']:.1f} {name}. gamma 0 - gamma 1: "
                f"{signed(gap1)} at 1x, {signed(gap2)} at 2x. Answer: {answer} (rule: a difference of one-seed runs is "
                f"within noise below {single:.1f}, a change of such differences is real above {double:.1f}; "
                f"seed sd {sd:.2f} {name} pooled over the multi-seed rows).")
    return "\n".join(text)


def _eqlv2_mechanism(params: dict, root: str | Path, iou: str, means: list[dict], method: tuple, ce: tuple,
                     with_gap: str | None) -> str:
    """EQLv2's gradient balance (group means of the positive/negative ratio, EQLv2 and sigmoid CE), whether it
    moves the rare classes' ratio towards its mu, whether rare AP follows, and whether GAP on top lifts it; each
    difference by the noise rule. method (EQLv2), ce: (mean APr, seeds); with_gap: the EQLv2 + GAP run."""
    mu = 0.8                                           # EQLv2's target ratio (its paper's default)
    (er, ne), (sr, ns) = method, ce
    name = claims.metric_name(f"{iou}.APr")
    sd = _sd(params, f"{iou}.APr", root)
    towards = abs(means[0]["r"] - mu) < abs(means[1]["r"] - mu)
    rare = stats.verdict(er - sr, sd, (ne, ns))
    text = (f"{'Its mechanism works as designed here' if towards else 'Its mechanism does not reach its target here'}: "
            f"the accumulated positive/negative gradient ratio of the rare classes' logits is {means[0]['r']:.2f} "
            f"with EQLv2 against {means[1]['r']:.2f} with sigmoid CE (frequent {means[0]['f']:.2f} vs "
            f"{means[1]['f']:.2f}; diagnostics.json): EQLv2 {'moves' if towards else 'does not move'} it towards its "
            f"mu = {mu}; ")
    if rare.status == "reproduced":
        text += f"rare AP follows ({signed(er - sr)} {name}, beyond {K} x noise = {rare.threshold:.1f})."
    else:
        text += f"rare AP does not follow ({signed(er - sr)} {name}: {rare.status}, {K} x noise = {rare.threshold:.1f})."
        gap_r = _box(with_gap, root, "APr", iou) if with_gap else None
        if gap_r is not None:
            on_top = stats.verdict(gap_r - er, sd, (ne, 1))
            text += (f" GAP on top of EQLv2 moves it {signed(gap_r - er)} ({er:.1f} -> {gap_r:.1f} {name}: {on_top.status}, "
                     f"{K} x noise = {on_top.threshold:.1f})"
                     + ("; so balancing the gradients is not what the rare classes lack here, ranking is."
                        if on_top.status == "reproduced" else "."))
    return text + (" The implementation equals the reference code and its paper (gamma 12, mu 0.8, alpha 4, weights "
                   "from the statistics before each batch, weighted gradients accumulated, classifier bias at prior "
                   "0.001 on all C + 1 columns, sigmoid(z_c)(1 - sigmoid(z_bg)) at test; tests/test_objectives.py and "
                   "tests/test_eqlv2_reference.py).")


def eqlv2_markdown(params: dict, root: str | Path, paper: dict) -> str:
    """EQLv2 below CE: the numbers at 1x (and 2x when run) on the claims' metric (mask AP where masks are
    learned), what its gradient statistics did, and whether the schedule explains the gap."""
    text = ["### EQLv2 against sigmoid CE", ""]
    spec = question(params, "eqlv2_below_ce")
    runs, diagnostics = spec.get("runs") or {}, spec.get("diagnostics") or {}
    (name_table, eqlv2_key), (_, ce_key) = _key(spec["rows"]["method"]), _key(spec["rows"]["ce"])
    table = tables.build(params, name_table, root, paper) if name_table in sections(params) else None
    ce_runs = table.row(ce_key).found if table is not None else []
    eqlv2_runs = table.row(eqlv2_key).found if table is not None else []
    if not ce_runs or not eqlv2_runs:
        return "\n".join(text + ["Not run yet: needs Table 1's EQLv2 and sigmoid CE rows."])
    iou = claims.choose_iou(ce_runs + eqlv2_runs, root)[0]
    other = "bbox" if iou == "segm" else "segm"
    name, other_name = (claims.IOU_NAMES[i] for i in (iou, other))
    (e, ne), (s, ns) = _mean(eqlv2_runs, f"{iou}.AP", root), _mean(ce_runs, f"{iou}.AP", root)
    (eo, _), (so, _) = _mean(eqlv2_runs, f"{other}.AP", root), _mean(ce_runs, f"{other}.AP", root)
    er, sr = _mean(eqlv2_runs, f"{iou}.APr", root)[0], _mean(ce_runs, f"{iou}.APr", root)[0]
    x = _box(runs["softmax"], root, "AP", iou) if runs.get("softmax") else None
    paper_path, p_diff = claims.paper_difference(table, table.row(eqlv2_key), table.row(ce_key), f"{iou}.AP", "bbox.AP")
    col = table.metrics.index(paper_path)
    p_e, p_s = table.row(eqlv2_key).paper[col], table.row(ce_key).paper[col]
    sd = _sd(params, f"{iou}.AP", root)
    first = stats.verdict(e - s, sd, (ne, ns), p_diff)
    status = first.status
    seeds = lambda n: "one seed" if n == 1 else f"{n} seeds"  # noqa: E731
    text.append(f"On LVIS, EQLv2 is far above sigmoid CE ({claims.metric_name(paper_path)} {p_e} vs {p_s}). Here, at 1x: "
                f"{e:.1f} vs {s:.1f} {name} AP (EQLv2 {seeds(ne)}, sigmoid CE {seeds(ns)}; {name} APr {er:.1f} vs "
                f"{sr:.1f}" + (f"; {other_name} AP {eo:.1f} vs {so:.1f})" if eo is not None and so is not None else ")")
                + (f", softmax CE {x:.1f}" if x is not None else "")
                + f". The paper's EQLv2 > CE: **{status}** ({signed(e - s)}, {K} x noise = {first.threshold:.1f}).")
    de, ds = (load_diagnostics(diagnostics[k], root) if diagnostics.get(k) else None for k in ("method", "ce"))
    if de and ds and "objective" in (de.get("gradients") or {}) and "objective" in (ds.get("gradients") or {}):
        means = [figures.group_means(d["gradients"]["objective"]["ratio"], d["frequency"]) for d in (de, ds)]
        if all(m["r"] is not None and m["f"] is not None for m in means) and er is not None and sr is not None:
            text.append("\n" + _eqlv2_mechanism(params, root, iou, means, (er, ne), (sr, ns), runs.get("with_gap")))
    e2, s2 = (_box(runs[k], root, "AP", iou) if runs.get(k) else None for k in ("method_2x", "ce_2x"))
    if e2 is None or s2 is None:
        text.append(f"\nWhether a longer schedule changes this (LVIS 1x is ~12 epochs, ours ~3): `{runs.get('method_2x')}` "
                    f"against `{runs.get('ce_2x')}` (registered): **not in results/ yet**.")
        return "\n".join(text)
    d1, d2 = e - s, e2 - s2
    second = stats.verdict(d2, sd, (1, 1), p_diff)                # a difference of two one-seed runs
    change = stats.change_verdict(d1, d2, sd, (ne, ns), (1, 1))   # the 2x difference minus the 1x one
    status2 = second.status
    if status == "reproduced":
        answer = ("**no disagreement**: EQLv2 is above CE at 1x" +
                  (" and at 2x" if status2 == "reproduced" else f", {status2} at 2x"))
    elif status2 == "reproduced" and change.difference > change.threshold:
        place = "below CE" if status == "opposite" else "level with CE (within noise)"
        answer = f"**the schedule**: EQLv2 is {place} at 1x and above it at 2x"
    elif status2 == "reproduced":
        answer = ("**inconclusive**: EQLv2 is above CE at 2x, but its difference to CE changes from 1x to 2x "
                  "within noise")
    elif change.difference > change.threshold:
        answer = ("**partly the schedule**: the longer schedule moves EQLv2 towards CE beyond noise, but 2x is not "
                  "long enough to put it above")
    else:
        answer = "**not the schedule**: EQLv2's place against CE does not change beyond noise from 1x to 2x"
    text.append(f"\nAt 2x (one seed each): EQLv2 {e2:.1f} vs sigmoid CE {s2:.1f} {name} AP ({signed(d2)}: **{status2}**, "
                f"{K} x noise = {second.threshold:.1f}); EQLv2 - CE {signed(d1)} at 1x, {signed(d2)} at 2x. Answer: "
                f"{answer} (rule: a change of the difference is real above {change.threshold:.1f}; seed sd "
                f"{sd:.2f} {name} AP pooled over the multi-seed rows).")
    return "\n".join(text)


def headline_gain(params: dict, root: str | Path) -> dict | None:
    """GAP's rare-AP gain over sigmoid CE in Table 1 (random sampling), on the claims' metric: {ce, gap (runs),
    iou, name (e.g. "mask APr"), ce_apr, n_ce, gap_apr, n_gap, sd (pooled seed sd), noise (of the difference),
    sentence ("GAP moves ...: **verdict** (2 x noise ...)."),
    status (the noise rule's verdict), verdict (its stats.Verdict)}; None while a row has no run or no APr."""
    rows = question(params, "gain").get("rows") or {}
    if set(rows) != {"ce", "gap"}:
        return None
    (name_table, ce_key), (_, gap_key) = _key(rows["ce"]), _key(rows["gap"])
    table = tables.build(params, name_table, root) if name_table in sections(params) else None
    ce, gap = ((table.row(k).found if table is not None else []) for k in (ce_key, gap_key))
    if not ce or not gap:
        return None
    iou = claims.choose_iou(ce + gap, root)[0]
    (ce_apr, n_ce), (gap_apr, n_gap) = (_mean(runs, f"{iou}.APr", root) for runs in (ce, gap))
    if not n_ce or not n_gap:               # no rare ground truth in the split: LVIS gives APr -1
        return None
    sd = _sd(params, f"{iou}.APr", root)
    name = claims.metric_name(f"{iou}.APr")
    found = stats.verdict(gap_apr - ce_apr, sd, (n_ce, n_gap), metric=name)
    return {"ce": ce, "gap": gap, "iou": iou, "name": name, "ce_apr": ce_apr, "n_ce": n_ce, "gap_apr": gap_apr,
            "n_gap": n_gap, "sd": sd, "noise": found.noise, "status": found.status, "verdict": found,
            "sentence": f"GAP moves {name} {signed(gap_apr - ce_apr)} ({ce_apr:.1f} -> {gap_apr:.1f}; {n_ce} and {n_gap} "
                        f"seeds): **{found.status}** ({K} x noise = {found.threshold:.1f})."}


def optimizer_markdown(params: dict, root: str | Path) -> str:
    """GAP's rare-AP gain under SGD (questions.gain.rows) against its gain under AdamW (questions.gain.adamw):
    is the gain the rare classifiers' learning speed under SGD?"""
    text = ["### GAP's gain and the optimizer", ""]
    gain = headline_gain(params, root)
    if gain is None:
        return "\n".join(text + ["Not checked yet: needs Table 1's sigmoid CE and sigmoid CE + GAP rows with "
                                  "rare AP (APr)."])
    iou, name, sd, s_ce, s_status = gain["iou"], gain["name"], gain["sd"], gain["ce_apr"], gain["status"]
    text.append(f"Under SGD (the paper's optimizer, our default), {gain['sentence']}")
    adamw_runs = question(params, "gain").get("adamw") or {}
    a_ce, a_gap = (_box(adamw_runs[k], root, "APr", iou) if adamw_runs.get(k) else None for k in ("ce", "gap"))
    if a_ce is None or a_gap is None:
        text.append(f"\nWhether that gain is the rare classifiers' learning speed under SGD is what `{adamw_runs.get('ce')}` "
                    f"and `{adamw_runs.get('gap')}` (AdamW, lr 1e-3, weight decay 0.05; registered) answer: **not in "
                    "results/ yet**.")
        return "\n".join(text)
    adamw = stats.verdict(a_gap - a_ce, sd, (1, 1))               # a difference of two one-seed runs
    a_status = adamw.status
    lift_verdict = stats.verdict(a_ce - s_ce, sd, (gain["n_ce"], 1))  # AdamW's one seed against SGD's seeds
    lifted = lift_verdict.status == "reproduced"
    lift = (f"AdamW alone moves sigmoid CE {s_ce:.1f} -> {a_ce:.1f} {name} ({signed(a_ce - s_ce)}, {K} x noise = "
            f"{lift_verdict.threshold:.1f})")
    on_top = ("GAP adds nothing beyond noise on top" if a_status == "within noise" else
              "GAP even lowers it beyond noise on top")
    if s_status == "reproduced" and a_status != "reproduced" and lifted:
        answer = (f"**learning speed**: AdamW's per-weight steps lift the rare classifiers of sigmoid CE by themselves "
                  f"({lift}), and {on_top}; at this schedule GAP's gain under SGD stands in for the rare classes' "
                  "faster learning")
    elif s_status == "reproduced" and a_status != "reproduced":
        answer = (f"**inconclusive**: under AdamW {on_top}, but AdamW does not lift sigmoid CE's rare AP beyond noise "
                  f"either ({lift}), so learning speed does not explain the difference")
    elif s_status == "reproduced":
        answer = "**GAP helps under both optimizers**: its gain is not only the rare classifiers' learning speed"
    else:
        answer = "**no gain to explain**: under SGD GAP does not lift rare AP beyond noise here"
    text.append(f"\nUnder AdamW (one seed each): sigmoid CE {a_ce:.1f}, + GAP {a_gap:.1f} {name} "
                f"({signed(a_gap - a_ce)}: {a_status}, {K} x noise = {adamw.threshold:.1f}). Answer: {answer} (rule: "
                f"a difference beyond {K} x its noise is real; seed sd {sd:.2f} {name} pooled over the multi-seed rows).")
    return "\n".join(text)


def schedule_markdown(params: dict, root: str | Path) -> str:
    """GAP's rare-AP gain at 1x (Table 1's sigmoid CE rows) against its gain at 2x (the convergence check's
    2x runs of the same two settings): does the gain survive a longer schedule, or is it learning speed?"""
    text = ["### GAP's gain and the schedule", ""]
    gain = headline_gain(params, root)
    if gain is None:
        return "\n".join(text + ["Not checked yet: needs Table 1's sigmoid CE and sigmoid CE + GAP rows with "
                                  "rare AP (APr)."])
    iou, name, sd, status1 = gain["iou"], gain["name"], gain["sd"], gain["status"]
    c1, g1 = gain["ce_apr"], gain["gap_apr"]
    pairs = figures.convergence_pairs(params) if "convergence" in sections(params) else []
    long = {kind: next((p["long"] for p in pairs if p["short"] in gain[kind] and p["long"]), None)   # their 2x runs
            for kind in ("ce", "gap")}
    text.append(f"At 1x, {gain['sentence']}")
    c2, g2 = (_box(long[k], root, "APr", iou) if long[k] else None for k in ("ce", "gap"))
    if c2 is None or g2 is None:
        runs = " and ".join(f"`{r}`" for r in long.values() if r) or "the convergence check's 2x runs"
        text.append(f"\nWhether the gain survives a longer schedule is what {runs} (registered) answer: "
                    "**not in results/ yet**.")
        return "\n".join(text)
    second = stats.verdict(g2 - c2, sd, (1, 1))                   # a difference of two one-seed runs
    change = stats.change_verdict(g1 - c1, g2 - c2, sd, (gain["n_ce"], gain["n_gap"]), (1, 1))  # 2x gain - 1x gain
    status2 = second.status
    shrinks = change.difference < -change.threshold
    if status1 != "reproduced":
        answer = "**no gain at 1x to follow**"
    elif status2 == "reproduced":
        answer = ("**the gain shrinks with the schedule but holds at 2x**" if shrinks else
                  "**the gain holds at 2x**: not only learning speed, as far as 2x reaches")
    elif status2 == "opposite":
        answer = "**the gain turns over by 2x**: CE + GAP below CE"
    elif shrinks:
        answer = "**the gain fades by 2x**: at 1x it is largely learning speed (the rare classes learned sooner)"
    else:
        answer = ("**inconclusive at 2x**: with one seed each, the 2x gain is within noise both of zero and of the "
                  "1x gain")
    text.append(f"\nAt 2x (one seed each: `{long['ce']}`, `{long['gap']}`): {c2:.1f} -> {g2:.1f} {name} "
                f"({signed(g2 - c2)}: {status2}, {K} x noise = {second.threshold:.1f}). Answer: {answer} (rule: a "
                f"change of the gain from 1x to 2x is real beyond {change.threshold:.1f}; seed sd {sd:.2f} "
                f"{name} pooled over the multi-seed rows). Convergence itself lies further out (the `convergence` "
                "page).")
    return "\n".join(text)


def limits_markdown(params: dict, root: str | Path, found_regime: dict, rare_iou: str) -> str:
    """Which regime, learning speed, seeds, scale: the limits of every number on the page."""
    lines = ["## The limits", "", regime_markdown(found_regime), ""]
    runs = found_regime["runs"]
    lines.append("- " + learning_speed_markdown(params, root, runs))
    learned = [claims.choose_iou([r], root)[0] == "segm" for r in runs]
    if runs:
        lines.append(f"- **Mask or box AP.** Masks are learned (mask AP >= {claims.MASK_SHARE:g} x box AP) in "
                     f"{sum(learned)} of {len(runs)} runs. Each claim is judged on mask AP, the paper's metric, where "
                     "its runs learned masks, on box AP otherwise; the claims say which.")
    spread = claims.pooled_spread(params, f"{rare_iou}.AP", root)
    if spread["sd"] is not None:
        lines.append(f"- **Seeds.** {spread['rows']} rows have {'/'.join(map(str, sorted(set(spread['seeds']))))} seeds "
                     f"({claims.metric_name(rare_iou + '.AP')} seed sd {spread['sd']:.2f}, pooled); every other row "
                     "has one, and its noise is taken "
                     f"from them. Effects under about {stats.threshold(stats.noise(spread['sd'], 1, 1)):.1f} AP between "
                     f"one-seed rows cannot be told from seed noise.")
    facts = _dataset_facts(runs, root)
    categories = f"{sum(facts['categories'].values())} glyph categories" if facts else "glyph categories"
    lines.append(f"- **Scale.** {categories} on small rendered images and a tiny detector trained from scratch, "
                 "against 1,203 LVIS categories and an ImageNet-pretrained R50-FPN: the paper's values are not ours "
                 "to match, only the direction and rough size of its effects.")
    return "\n".join(lines)


def judged_claims(params: dict, root: str | Path, paper: dict, found: list[dict] | None = None) -> list[dict]:
    """claim_rows of the registry's claims (`found`: claims.claims, computed when None) and Table 3's K sweep
    at the paper's K (or the smallest K below the largest)."""
    found = found if found is not None else claims.claims(params, root, paper)
    sweep_claim = None
    if "table3" in sections(params):
        sweep = tables.build_k_sweep(params, root, paper)
        if len(sweep["rows"]) >= 2 and all(r["ours"] for r in sweep["rows"]) and len(sweep["k_common"]) >= 2:
            smaller = sorted(sweep["k_common"])[:-1]
            sweep_claim = claims.k_sweep_verdict(sweep, claims.PAPER_K if claims.PAPER_K in smaller else smaller[0],
                                                 root, paper)
    return claim_rows(found, sweep_claim)


def open_questions_markdown(params: dict, root: str | Path, paper: dict) -> str:
    """GAP alone, EQLv2 below CE, GAP's gain and the optimizer, and GAP's gain and the schedule: each
    answered from its registry runs."""
    return ("## Open questions, by experiment\n\n" + gap_alone_markdown(params, root) + "\n\n"
            + eqlv2_markdown(params, root, paper) + "\n\n" + optimizer_markdown(params, root) + "\n\n"
            + schedule_markdown(params, root))


# ---- the page ------------------------------------------------------------------------------------------
def what_gap_changes(params: dict, root: str | Path) -> list:
    """GAP's rare-AP gain against schedule length (box and mask), per class against training images, and where
    rare objects' own class ranks in their image: Markdown and figures, in order."""
    blocks: list = ["## What GAP changes"]
    gains = [g for g in figures.gain_by_length(params, root) if g["verdict"] is not None]
    if gains:
        lines = [f"- {g['length']:g}x, {claims.metric_name(g['metric'])}: {signed(g['verdict'].difference)} "
                 f"({stats.NOISE_K:g} x noise = {g['verdict'].threshold:.1f}; seeds {len(g['gap'])} with GAP, "
                 f"{len(g['ce'])} without): **{g['verdict'].status}**" for g in gains]
        blocks += ["GAP's rare-AP gain over sigmoid CE at each schedule length (questions.gain.lengths), on box and "
                   "mask AP alike:\n\n" + "\n".join(lines), plots.plot_gain_by_length(gains)]
    iou = claims.choose_iou([r for runs in pair_runs(params).values() for r in runs], root)[0]
    per_class = figures.per_class_gain(params, root, iou)
    if per_class:
        medians = {g: median(r["gain"] for r in per_class if r["frequency"] == g)
                   for g in ("r", "c", "f") if any(r["frequency"] == g for r in per_class)}
        blocks += ["Per class (the look-alike pair, mean over seeds), the median gain in "
                   f"{claims.metric_name(iou + '.AP')}: " + ", ".join(f"{GROUP_NAMES[g]} {signed(m)}" for g, m in medians.items())
                   + ".", plots.plot_per_class_gain(per_class, iou)]
    ranks = figures.own_rank_histogram(params, root)
    if ranks:
        blocks += ["Where each rare object's own class ranks among its image's detections: a rare object is lost "
                   "to a per-image cap K exactly when its rank exceeds K.", plots.plot_own_rank_histogram(
                       ranks, figures.RANK_BINS)]
    else:
        blocks.append("Where rare objects' own class ranks in their image: not recorded by the runs in results/ "
                      "(their look-alike analysis predates the record; the next run of the pair makes it).")
    return blocks if len(blocks) > 1 else []


def build(root: str | Path = ".", params: dict | None = None, paper: dict | None = None) -> Overview:
    """The overview page from the results below `root` (params: root/params.yaml)."""
    params = params if params is not None else read_params(Path(root) / "params.yaml")
    paper = paper if paper is not None else paper_numbers()
    page = Overview()
    runs = [r for r in run_names(params) if load_metrics(r, root) is not None]
    found_regime = regime(params, root)
    page.blocks.append(QUESTION + "\n\n" + tables.profile_note(profiles_of(runs, root)) + " "
                       + regime_markdown(found_regime))
    page.blocks.append(setup_markdown(params, root, paper))
    rare, iou = rare_ap_rows(params, root, paper) if "table1" in sections(params) else ([], "bbox")
    page.blocks.append("## The headline: rare AP per model\n\n" + (
        f"Table 1's rows, our {claims.IOU_NAMES.get(iou, iou)} APr (each seed a dot) beside the paper's mask APr. "
        + rare_ap_sentence(rare, _sd(params, f"{iou}.APr", root)) if rare else "No Table 1 run has results yet."))
    if rare:
        page.blocks.append(plots.plot_rare_ap(rare, iou))
    rows = judged_claims(params, root, paper)
    page.blocks.append(claims_markdown(rows))
    if any(r["ours"] is not None for r in rows):
        page.blocks.append(plots.plot_claims(rows))
    page.blocks += what_gap_changes(params, root)
    page.blocks.append(lookalike_markdown(params, root))
    page.blocks.append(disagreements_markdown(rows, params, root))
    page.blocks.append(open_questions_markdown(params, root, paper))
    page.blocks.append(limits_markdown(params, root, found_regime, iou))
    return page

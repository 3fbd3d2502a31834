"""The series the figures draw, read from the runs' diagnostics.json, metrics.json and curve.json, and the
small tables beside them (rog.report.plots draws them).

Figure 4: per class, the ratio of accumulated positive to negative gradient magnitude that a loss
sent to that class's logit during training (rog.engine.diagnostics), classes sorted by training
frequency. A figure row reads source `objective` (the object-level loss) or `gap` of its run.
Figure 5: (a) the L2 norm of each class's classifier weight, (b) the AP of each class, sorted the same.
`balance` turns either into one number per run: the rare / frequent ratio of group means (1 = balanced).
Convergence (not in the paper): box and segm AP against iteration from the runs' curve.json, and the
check that a 2x schedule ends within `tolerance` AP points of the 1x one (rows SETTING/1x, SETTING/2x).
Seed spread: Table 3's AP against K per frequency group, the sweeps' AP against each knob and the
per-seed strip of Table 1's headline rows draw every seed; bands are the min to max over seeds.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rog.pipeline.registry import pair_runs, question, row_runs, sections
from rog.report import claims, markdown, stats
from rog.report.markdown import signed
from rog.report.regime import older_runs
from rog.report.results import load_curve, load_diagnostics, load_lookalike, load_metrics, value

GROUPS = ("r", "c", "f")


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
    head = ["row", "run", "object-level loss gradient", "ranking term gradient", "mean classifier weight norm"]
    return markdown.table(head, [[labels.get(r["key"], r["key"]), r["run"],
                                  *("-" if r[k] is None else f"{r[k]:.3g}" for k in ("objective", "gap", "weight_norm"))]
                                 for r in rows])


def omega_by_frequency(counts, gammas=(0.0, 0.5, 1.0, 2.0)) -> list[dict]:
    """Eq. 9's class weights omega on a training set, per gamma and LVIS frequency group.

    counts: rog.data.counts.CategoryCounts (omega from its instance counts, as GAP's `dataset`
    weighting; the default `online` counts of positive RoIs track them). [{gamma, group, mean, min, max}].
    """
    return omega_groups(counts.instance_count, counts.frequency, gammas)


def omega_groups(counts, frequency, gammas=(1.0,)) -> list[dict]:
    """Eq. 9's omega from per-class counts [C] (a tensor) and their frequency letters (C of r/c/f), per gamma
    and group: [{gamma, group, mean, min, max}]."""
    from rog.losses.gap import class_weights

    out = []
    for gamma in gammas:
        omega = class_weights(counts, gamma).numpy()
        for group in "rcf":
            values = omega[[f == group for f in frequency]]
            if values.size:
                out.append({"gamma": float(gamma), "group": group, "mean": float(values.mean()),
                            "min": float(values.min()), "max": float(values.max())})
    return out


def omega_markdown(rows: list[dict]) -> str:
    return markdown.table(["gamma", "group", "mean omega", "min", "max"],
                          [[f"{r['gamma']:g}", r["group"], *(f"{r[k]:.3g}" for k in ("mean", "min", "max"))] for r in rows])


def figure_iou(params: dict, name: str, root: str | Path = ".") -> tuple[str, str]:
    """("segm" or "bbox", why) for the per-class AP of figure `name`: the paper's mask AP where the
    figure's runs learned masks, else box AP (rog.report.claims.choose_iou, the claims' rule)."""
    from rog.report.claims import choose_iou

    runs = [r for row in sections(params)[name].get("rows") or [] for r in row.get("runs") or []]
    return choose_iou(runs, root)


def weight_norm_series(params: dict, root: str | Path = ".", name: str = "figure5",
                       iou: str | None = None) -> list[dict]:
    """[{key, run, frequency, order, norm, ap, count, iou}] per figure-5 row with diagnostics and metrics:
    lists over the diagnostics' classes; ap: per-class AP in percent of `iou` (default figure_iou's
    choice; None where LVIS has none); count: the class's training image count (metrics.json)."""
    iou = iou or figure_iou(params, name, root)[0]
    out = []
    for row in sections(params)[name].get("rows") or []:
        for run in row.get("runs") or []:
            diag, metrics = load_diagnostics(run, root), load_metrics(run, root)
            if diag is None or metrics is None or iou not in metrics:
                continue
            per_class = {c["id"]: c for c in metrics[iou]["per_category"]}
            ap = run_values(run, root, "ap", iou=iou)[0]
            count = [per_class.get(c, {}).get("train_image_count") for c in diag.get("category_ids") or []]
            out.append({"key": row["paper"], "run": run, "frequency": diag["frequency"], "order": _order(diag),
                        "norm": diag["classifier_weight_norm"], "ap": ap, "count": count, "iou": iou})
            break
    return out


IOU_NAMES = {"bbox": "box AP", "segm": "mask AP"}


def balance_rows(series: list[dict], key: str) -> list[dict]:
    """Per series: group means of `key` (ratio, norm or ap) and the rare/frequent balance."""
    out = []
    for s in series:
        means = group_means(s[key], s["frequency"])
        out.append({"key": s["key"], "run": s["run"], **{g: means[g] for g in GROUPS},
                    "balance": balance(s[key], s["frequency"])})
    return out


def run_values(run: str, root: str | Path, quantity: str, source: str = "objective",
               iou: str = "bbox") -> tuple[list, list[str]] | None:
    """(per-class values, their frequency letters) of one run: quantity "ratio" (the `source` term's
    positive/negative gradient ratio), "norm" (classifier weight norm) or "ap" (per-class AP of `iou`, percent;
    None where LVIS has none); None when the run lacks the file or the entry."""
    diag = load_diagnostics(run, root)
    if diag is None:
        return None
    if quantity == "ratio":
        grads = (diag.get("gradients") or {}).get(source)
        return (grads["ratio"], diag["frequency"]) if grads and any(grads["negative"]) else None
    if quantity == "norm":
        return (diag["classifier_weight_norm"], diag["frequency"]) if diag.get("classifier_weight_norm") else None
    metrics = load_metrics(run, root)
    if metrics is None or iou not in metrics:
        return None
    per_class = {c["id"]: c for c in metrics[iou]["per_category"]}
    ap = [100.0 * per_class[c]["AP"] if per_class.get(c, {}).get("AP", -1) >= 0 else None
          for c in diag.get("category_ids") or []]
    return ap, diag["frequency"]


def log_balance_spread(params: dict, root: str | Path, quantity: str, source: str = "objective",
                       iou: str = "bbox") -> dict:
    """The seed spread of log(rare/frequent balance) of a quantity (see run_values), pooled over the
    registry's rows with several seeds (rog.report.claims.pooled_spread): the noise of Figures 4 and 5's
    balance verdicts."""
    from rog.report.claims import pooled_spread

    def read(run: str) -> float | None:
        found = run_values(run, root, quantity, source, iou)
        b = balance(*found) if found else None
        return math.log(b) if b and b > 0 else None

    return pooled_spread(params, None, root, read=read)


def balance_markdown(rows: list[dict], labels: dict[str, str], what: str) -> str:
    head = ["row", "run", f"{what} rare", "common", "frequent", "rare / frequent"]
    return markdown.table(head, [[labels.get(r["key"], r["key"]), r["run"],
                                  *("-" if r[g] is None else f"{r[g]:.3g}" for g in GROUPS),
                                  "-" if r["balance"] is None else f"{r['balance']:.3g}"] for r in rows])


# ---- convergence: learning curves of the 2x runs ------------------------------------------------------


def convergence_pairs(params: dict, name: str = "convergence") -> list[dict]:
    """[{setting, short, long}] from rows 'SETTING/1x' and 'SETTING/2x' (their first run; None when the
    row is absent or has no run in this registry, e.g. a subset), settings in row order."""
    pairs: dict[str, dict] = {}
    for row in sections(params)[name].get("rows") or []:
        setting, _, length = row["paper"].rpartition("/")
        if length not in ("1x", "2x") or not setting:
            raise ValueError(f"{name}: row '{row['paper']}' must be named SETTING/1x or SETTING/2x")
        runs = row.get("runs") or []
        pair = pairs.setdefault(setting, {"setting": setting, "short": None, "long": None})
        pair["short" if length == "1x" else "long"] = runs[0] if runs else None
    return list(pairs.values())


def setting_label(setting: str, labels: dict[str, str]) -> str:
    """A setting's name for legends and tables: its 1x row's label without ', 1x' (else the setting)."""
    return labels.get(f"{setting}/1x", setting).removesuffix(", 1x")


def convergence_curves(params: dict, labels: dict[str, str], name: str = "convergence",
                       root: str | Path = ".") -> dict:
    """What learning_curves draws, read from the runs' curve.json and metrics.json:
    {curves: {label: 2x points}, ends: {label: last 1x point}, lr_drops: [iteration] (of the first 2x
    run with results, as it recorded them: run.lr_drops), missing: [runs without curve.json]}."""
    out: dict = {"curves": {}, "ends": {}, "lr_drops": [], "missing": []}
    for pair in convergence_pairs(params, name):
        label = setting_label(pair["setting"], labels)
        for key, run in (("curves", pair["long"]), ("ends", pair["short"])):
            curve = load_curve(run, root) if run else None
            if not curve:
                out["missing"] += [run] if run else []
                continue
            out[key][label] = curve if key == "curves" else curve[-1]
            metrics = load_metrics(run, root)
            if key == "curves" and not out["lr_drops"] and metrics is not None:
                out["lr_drops"] = recorded_lr_drops(params, run, metrics)
    return out


def recorded_lr_drops(params: dict, run: str, metrics: dict) -> list[int]:
    """The iterations where `run`'s LR dropped: run.lr_drops as recorded; for a run recorded before that
    field, its own profile's train.lr_steps (not the top-level defaults, which no profile of ours trains with)."""
    from rog.config import resolve_run, step_iterations

    recorded = metrics["run"].get("lr_drops")
    if recorded is not None:
        return [int(i) for i in recorded]
    resolved = resolve_run(params, metrics["run"].get("profile") or params.get("profile"), run)
    return step_iterations(int(metrics["run"]["iterations"]), resolved["train"]["lr_steps"])


def convergence_rows(params: dict, name: str = "convergence", root: str | Path = ".") -> list[dict]:
    """Per setting: 1x and 2x box / mask AP (percent, from metrics.json), 2x - 1x, and whether both
    differences are within the figure's `tolerance` (None when a run is missing)."""
    tolerance = float(sections(params)[name].get("tolerance", 1.5))
    out = []
    for pair in convergence_pairs(params, name):
        short = load_metrics(pair["short"], root) if pair["short"] else None
        long = load_metrics(pair["long"], root) if pair["long"] else None
        missing = [run or f"{pair['setting']}/{length} (not in this registry)"
                   for run, found, length in ((pair["short"], short, "1x"), (pair["long"], long, "2x"))
                   if found is None]
        row = {**pair, "tolerance": tolerance, "missing": missing}
        for iou in ("bbox", "segm"):
            a, b = value(short, f"{iou}.AP"), value(long, f"{iou}.AP")
            row[iou] = {"1x": a, "2x": b, "diff": None if a is None or b is None else b - a}
        diffs = [row[iou]["diff"] for iou in ("bbox", "segm")]
        row["converged"] = None if None in diffs else all(d <= tolerance for d in diffs)
        out.append(row)
    return out


def convergence_markdown(rows: list[dict], labels: dict[str, str]) -> str:
    """The 1x vs 2x table of convergence_rows, one line per setting, with its verdict."""
    head = ["setting", "1x run", "2x run", "box AP 1x", "2x", "2x - 1x", "mask AP 1x", "2x", "2x - 1x", "converged"]
    body = []
    for r in rows:
        cells = [("-" if r[iou][k] is None else f"{signed(r[iou][k])}" if k == "diff" else f"{r[iou][k]:.1f}")
                 for iou in ("bbox", "segm") for k in ("1x", "2x", "diff")]
        verdict = {None: "not checked", True: "yes", False: "**no**"}[r["converged"]]
        body.append([setting_label(r["setting"], labels), r["short"] or "-", r["long"] or "-", *cells, verdict])
    return markdown.table(head, body)


# ---- seed spread: Table 3 against K, the sweeps, the headline rows' seeds ----------------------------
K_PANELS = (("APr", "rare"), ("APc", "common"), ("APf", "frequent"), ("AP", "all"))


def k_sweep_series(params: dict, root: str | Path = ".", iou: str = "bbox", name: str = "table3") -> list[dict]:
    """Per row of table `name` with results: {key, runs, k: [K...], values: {metric: [runs, K] array}},
    metric in APr, APc, APf, AP (percent, NaN where a run lacks that K). k: the K of any of its runs."""
    out = []
    for row in sections(params)[name].get("rows") or []:
        loaded = {r: load_metrics(r, root) for r in row.get("runs") or []}
        found = {r: m for r, m in loaded.items() if m is not None and iou in m}
        ks = sorted({int(k) for m in found.values() for k in m[iou].get("max_dets_sweep", {})})
        if not ks:
            continue
        values = {metric: np.array([[np.nan if (v := value(m, f"{iou}.K{k}.{metric}")) is None else v for k in ks]
                                    for m in found.values()]) for metric, _ in K_PANELS}
        out.append({"key": row["paper"], "runs": list(found), "k": ks, "values": values})
    return out


SWEEP_KNOBS = ("delta", "gamma", "lambda")       # the sweeps table's order
SWEEP_METRICS = ("AP", "APr")                    # the seed strip's panels
SWEEP_PANELS = (("AP", "APc", "APf"), ("APr",))  # the sweeps figure's rows: each on its own scale


def sweep_series(params: dict, root: str | Path = ".", iou: str = "bbox", name: str = "sweeps") -> dict:
    """The sweeps' rows (paper key KNOB/VALUE) by knob: {knob: [{value, runs (names), paper (the paper's setting,
    the section's `setting`), AP, APr, APc, APf: [per run]}]} sorted by value (percent; rows without results
    left out); "default": the paper's setting's point (the one with the most runs) or None; "setting": the
    section's `setting` ({knob: value}). A value of 0 is the knob switched off (lambda 0: no GAP)."""
    section = sections(params)[name]
    setting = {k: float(v) for k, v in (section.get("setting") or {}).items()}
    out: dict = {knob: [] for knob in SWEEP_KNOBS}
    default = None
    for row in section.get("rows") or []:
        knob, _, text = row["paper"].partition("/")
        if knob not in out:
            raise ValueError(f"{name}: row '{row['paper']}' must be named KNOB/VALUE, KNOB one of {SWEEP_KNOBS}")
        loaded = {r: m for r in row.get("runs") or [] if (m := load_metrics(r, root)) is not None}
        metrics = [m for panel in SWEEP_PANELS for m in panel]
        values = {m: [v for v in (value(x, f"{iou}.{m}") for x in loaded.values()) if v is not None] for m in metrics}
        if not values["AP"]:
            continue
        point = {"value": float(text), "runs": list(loaded), "paper": setting.get(knob) == float(text), **values}
        out[knob].append(point)
        if point["paper"] and (default is None or len(loaded) > len(default["runs"])):
            default = point
    for knob in SWEEP_KNOBS:
        out[knob].sort(key=lambda p: p["value"])
    out["default"], out["setting"] = default, setting
    return out


def sweep_drops(series: dict, sds: dict[str, float], found_regime: dict | None = None) -> list[dict]:
    """Each swept setting's frequency-group AP against the paper's setting, by the noise rule (sds: the seed sd
    per metric): [{knob, value, metric, ours, paper, verdict}] for the settings beyond noise below it, and
    {knob, value, older} for a setting not compared because `found_regime` (regime.regime) puts its runs and
    the paper's setting's in two regimes (older: the runs made with older params)."""
    default = series.get("default")
    if default is None:
        return []
    out = []
    for knob in SWEEP_KNOBS:
        for point in series.get(knob) or []:
            if point["paper"] or point["value"] == 0:
                continue
            older = older_runs(found_regime, point["runs"] + default["runs"])
            if older:
                out.append({"knob": knob, "value": point["value"], "older": older})
                continue
            for metric in ("APr", "APc", "APf"):
                if not point[metric] or not default[metric]:
                    continue
                ours, paper = float(np.mean(point[metric])), float(np.mean(default[metric]))
                found = stats.verdict(ours - paper, sds[metric], (len(point[metric]), len(default[metric])))
                if found.status == "opposite":
                    out.append({"knob": knob, "value": point["value"], "metric": metric, "ours": ours,
                                "paper": paper, "verdict": found})
    return out


def seed_series(params: dict, root: str | Path = ".", iou: str = "bbox", name: str = "table1",
                min_runs: int = 2) -> list[dict]:
    """Table `name`'s rows registered with at least `min_runs` runs (the headline rows, one run per seed):
    [{key, runs, AP: [per run], APr: [...]}] in percent, rows without results left out."""
    out = []
    for row in sections(params)[name].get("rows") or []:
        if len(row.get("runs") or []) < min_runs:
            continue
        loaded = {r: load_metrics(r, root) for r in row["runs"]}
        found = [r for r, m in loaded.items() if m is not None and value(m, f"{iou}.AP") is not None]
        if found:
            out.append({"key": row["paper"], "runs": found,
                        **{m: [value(loaded[r], f"{iou}.{m}") for r in found] for m in SWEEP_METRICS}})
    return out



# ---- what GAP changes: gain against schedule length, per class, and where rare objects rank --------------
RARE_METRICS = ("bbox.APr", "segm.APr")


def gain_by_length(params: dict, root: str | Path = ".", metrics: tuple[str, ...] = RARE_METRICS) -> list[dict]:
    """GAP's gain (gap - ce, AP points) at each schedule length of questions.gain.lengths, per metric:
    [{length, metric, ce: [per seed], gap: [per seed], verdict: rog.report.stats.Verdict or None}]. The noise
    is the registry's pooled seed sd of the metric (rog.report.claims.pooled_spread, floored), as every claim's."""
    out = []
    for entry in question(params, "gain").get("lengths") or []:
        for path in metrics:
            sides = {side: [v for v in (value(load_metrics(r, root), path) for r in row_runs(params, entry[side]))
                            if v is not None] for side in ("ce", "gap")}
            verdict = None
            if sides["ce"] and sides["gap"]:
                sd = claims.seed_sd(params, path, root)
                diff = sum(sides["gap"]) / len(sides["gap"]) - sum(sides["ce"]) / len(sides["ce"])
                verdict = stats.verdict(diff, sd, (len(sides["gap"]), len(sides["ce"])), metric=path)
            out.append({"length": float(entry["length"]), "metric": path, **sides, "verdict": verdict})
    return out


def per_class_gain(params: dict, root: str | Path = ".", iou: str = "bbox") -> list[dict]:
    """Per category of the look-alike pair's runs (questions.lookalike.pair: without, then with GAP): its
    training image count, frequency group and mean AP over each side's seeds (AP points), and gap - ce:
    [{id, name, frequency, train_images, ce, gap, gain}], categories without a number on either side left out."""
    sides = list(pair_runs(params).values())
    if len(sides) != 2:
        return []
    means, facts = [], {}
    for runs in sides:
        per: dict[int, list[float]] = {}
        for m in (load_metrics(r, root) for r in runs):
            for c in ((m or {}).get(iou) or {}).get("per_category") or []:
                if c.get("AP", -1) >= 0:
                    per.setdefault(int(c["id"]), []).append(100.0 * c["AP"])
                    facts[int(c["id"])] = c
        means.append({cid: sum(v) / len(v) for cid, v in per.items()})
    out = []
    for cid in sorted(set(means[0]) & set(means[1])):
        c = facts[cid]
        out.append({"id": cid, "name": c.get("name"), "frequency": c.get("frequency"),
                    "train_images": c.get("train_image_count"), "ce": means[0][cid], "gap": means[1][cid],
                    "gain": means[1][cid] - means[0][cid]})
    return out


RANK_BINS = ((1, 1), (2, 5), (6, 20), (21, 50), (51, 100), (101, 300))  # ranks within the top K = 300


def own_rank_histogram(params: dict, root: str | Path = ".") -> dict[str, dict]:
    """Where each rare object's own-class detection ranks within its image's top K (lookalike.json's
    own_class_ranks, pooled over each side's seeds of the look-alike pair): {label: {bins: [count per
    RANK_BINS], not_in_top_k: n, objects: n, k: max_dets}}; a side whose runs recorded no ranks is left out."""
    out = {}
    for label, runs in pair_runs(params).items():
        ranks, k = [], None
        for run in runs:
            found = load_lookalike(run, root) or {}
            if "own_class_ranks" in found:
                ranks += [rank for _, rank in found["own_class_ranks"]]
                k = found.get("max_dets", k)
        if not ranks:
            continue
        bins = [sum(1 for r in ranks if r is not None and lo <= r <= hi) for lo, hi in RANK_BINS]
        out[label] = {"bins": bins, "not_in_top_k": sum(1 for r in ranks if r is None), "objects": len(ranks), "k": k}
    return out

"""The open questions, answered from their registry runs as records (the middle tier of rog.report): which
answer, the numbers it rests on and each difference's stats.Verdict. No prose here: rog/report/prose.yaml
holds one template per question and answer, and the overview fills it (prose.say).

    found = gap_alone(params, root)        # Answer(question="gap_alone", answer="starvation", values, verdicts)
    found = eqlv2_below_ce(params, root, paper)
    found = gain(params, root)             # GAP's rare-AP gain: under SGD at 1x and 2x, and under AdamW
    found = compare(params, root, NAME)    # a comparison declared in params.yaml (kind: compare)

Each question's runs are declared in params.yaml `questions:`; a question whose runs are not in results/
answers "not_run" (or "pending" when only its longer runs are missing), naming the runs it waits for. A new
question that compares two rows on one metric needs no code: `kind: compare` in params.yaml and its words
in prose.yaml (a group of the same name: title, not_run, reproduced, within_noise, opposite).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from rog.pipeline.registry import question, row_runs, run_names, sections
from rog.report import claims, figures, stats, tables
from rog.report.regime import recorded_freshness
from rog.report.results import aggregate, load_diagnostics, load_metrics, value

EQLV2_MU = 0.8  # EQLv2's target positive/negative gradient ratio (its paper's default)


@dataclass(frozen=True)
class Answer:
    """question: the params.yaml `questions` key (and prose.yaml's template group); answer: the template key;
    values: the numbers and names its template reads; verdicts: each judged difference by name."""
    question: str
    answer: str
    values: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)


def _key(ref: str) -> tuple[str, str]:
    """'TABLE/ROW' (a row as questions name it) -> (TABLE, ROW)."""
    table, _, key = ref.partition("/")
    return table, key


def _read(run: str | None, path: str, root: str | Path) -> float | None:
    return value(load_metrics(run, root), path) if run else None


def _mean(runs: list[str], path: str, root: str | Path) -> tuple[float | None, int]:
    mean, _, n = aggregate([value(load_metrics(r, root), path) for r in runs])
    return mean, n


def found_runs(params: dict, ref: str, root: str | Path) -> list[str]:
    """The runs with results of row `ref` ('TABLE/ROW'), or of run `ref`; [] when none has results."""
    runs = row_runs(params, ref) if "/" in ref else [ref]
    return [r for r in runs if load_metrics(r, root) is not None]


# ---- a comparison, declared: one params.yaml entry and one prose.yaml group -----------------------------
COMPARE = "compare"  # questions.NAME.kind of a declared comparison


def declared(params: dict) -> list[str]:
    """The questions of params.yaml declared as comparisons (kind: compare), in order."""
    return [name for name, spec in (params.get("questions") or {}).items() if (spec or {}).get("kind") == COMPARE]


def compare(params: dict, root: str | Path, name: str) -> Answer:
    """questions.NAME = {kind: compare, rows: {better: REF, worse: REF}, metric: AP | APr | APc | APf}, each REF
    a 'TABLE/ROW' or a run: does `better` beat `worse` on the metric (mask or box by the claims' per-group rule),
    beyond noise? Answers: not_run, or the verdict's status with '_' for ' ' (reproduced, within_noise,
    opposite). Values: better, worse (the refs), ours_better, ours_worse, n_better, n_worse, name (metric in
    words); verdicts: difference."""
    spec = question(params, name)
    metric = spec.get("metric", "AP")
    refs = spec["rows"]
    sides = {role: found_runs(params, refs[role], root) for role in ("better", "worse")}
    values = {"better": refs["better"], "worse": refs["worse"]}
    if not all(sides.values()):
        return Answer(name, "not_run", values)
    iou = claims.choose_iou(sides["better"] + sides["worse"], root, metric)[0]
    path = f"{iou}.{metric}"
    (b, n_b), (w, n_w) = _mean(sides["better"], path, root), _mean(sides["worse"], path, root)
    if not n_b or not n_w:
        return Answer(name, "not_run", values)
    found = stats.verdict(b - w, claims.seed_sd(params, path, root), (n_b, n_w), metric=claims.metric_name(path))
    values.update(ours_better=b, ours_worse=w, n_better=n_b, n_worse=n_w, name=claims.metric_name(path))
    return Answer(name, found.status.replace(" ", "_"), values, {"difference": found})


# ---- GAP alone -----------------------------------------------------------------------------------------
def omega_by_group(image_counts: list[int], frequency: list[str], gamma: float = 1.0) -> dict[str, float]:
    """Mean omega of Eq. 9 per frequency group from the training image counts (the online counts of positive
    RoIs track instance counts; image counts order classes the same way)."""
    import torch

    counts = torch.tensor(image_counts, dtype=torch.float64)
    return {r["group"]: r["mean"] for r in figures.omega_groups(counts, frequency, (gamma,))}


def dataset_facts(runs: list[str], root: str | Path) -> dict | None:
    """{image_counts, frequency}: each category's training images and frequency group, from the first of `runs`
    whose per-category metrics record them; None when none does."""
    for run in runs:
        per_cat = ((load_metrics(run, root) or {}).get("bbox") or {}).get("per_category") or []
        if per_cat and all("frequency" in c and "train_image_count" in c for c in per_cat):
            return {"image_counts": [int(c["train_image_count"]) for c in per_cat],
                    "frequency": [c["frequency"] for c in per_cat]}
    return None


def pretrained_start(params: dict, run: str, root: str | Path) -> bool | None:
    """Whether `run` started from a trained detector: model.weights of its profile and overlay in
    params.yaml, trusted only where the freshness stage found the run made with those params (a run of an
    older regime may have started otherwise under the same profile name); None when it cannot tell."""
    from rog.config import resolve_run

    metrics = load_metrics(run, root)
    if metrics is None or (recorded_freshness(root).get(run) or {}).get("state") != "same":
        return None
    profile = (metrics.get("run") or {}).get("profile") or params.get("profile")
    return bool(resolve_run(params, profile, run)["model"].get("weights"))


def gap_alone(params: dict, root: str | Path, paper: dict) -> Answer:
    """GAP alone (no classification loss): omega starvation or learning speed? questions.gap_alone's runs:
    GAP at gamma 1 (g1) and gamma 0 (g0), their 2x runs, AP loss alone (ap).

    Answers: not_run; trades (gamma 1 is level with or above gamma 0 at 1x: no collapse; verdicts["apf"] says
    whether Eq. 9 costs the frequent classes AP beyond noise); else, gamma 1 below gamma 0 beyond noise: pending (no 2x runs),
    schedule_ahead / schedule (gamma 1 catches up by 2x), both (the gap shrinks beyond noise but stays),
    starvation (it does not shrink). values["start"]: 'pretrained', 'scratch' or 'unknown' (gamma 1's run), which
    decides the Eq. 9 contradiction's wording (the paper's GAP-alone APf, values["paper_apf"])."""
    runs = question(params, "gap_alone")["runs"]
    iou = claims.choose_iou(list(runs.values()), root)[0]
    rare_iou = claims.choose_iou([runs["g1"], runs["g0"]], root, "APr")[0]
    ap = {k: _read(r, f"{iou}.AP", root) for k, r in runs.items()}
    apf = {k: _read(r, f"{iou}.APf", root) for k, r in runs.items()}
    values = {**{f"{k}_run": r for k, r in runs.items()}, "name": claims.metric_name(f"{iou}.AP")}
    if ap["g1"] is None or ap["g0"] is None:
        return Answer("gap_alone", "not_run", values)
    facts = dataset_facts([r for r in run_names(params) if load_metrics(r, root) is not None], root)
    omega = omega_by_group(facts["image_counts"], facts["frequency"]) if facts else {}
    paper_table, paper_row = _key(question(params, "gap_alone")["magnitude"]["gap"])   # GAP alone's row
    spec = paper[paper_table]
    paper_apf = spec["rows"][paper_row]["values"][list(spec["columns"]).index("APf")]
    values.update(g1=ap["g1"], g0=ap["g0"], ap_loss=ap.get("ap"), apf_g1=apf["g1"], apf_g0=apf["g0"],
                  apr_g1=_read(runs["g1"], f"{rare_iou}.APr", root), apr_g0=_read(runs["g0"], f"{rare_iou}.APr", root),
                  rare_name=claims.metric_name(f"{rare_iou}.APr"), omega_f=omega.get("f"), omega_r=omega.get("r"),
                  paper_apf=paper_apf,
                  start={True: "pretrained", False: "scratch", None: "unknown"}[pretrained_start(params, runs["g1"], root)])
    sd = claims.seed_sd(params, f"{iou}.AP", root)
    at_1x = stats.verdict(ap["g0"] - ap["g1"], sd, (1, 1), metric=values["name"])
    longer = ap.get("g1_2x") is not None and ap.get("g0_2x") is not None
    if longer:
        values.update(g1_2x=ap["g1_2x"], g0_2x=ap["g0_2x"])
    if not at_1x.difference > at_1x.threshold:
        apf_cost = stats.verdict(apf["g0"] - apf["g1"], claims.seed_sd(params, f"{iou}.APf", root), (1, 1),
                                 metric=claims.metric_name(f"{iou}.APf"))
        return Answer("gap_alone", "trades", values, {"at_1x": at_1x, "apf": apf_cost})
    if not longer:
        return Answer("gap_alone", "pending", values, {"at_1x": at_1x})
    at_2x = stats.verdict(ap["g0_2x"] - ap["g1_2x"], sd, (1, 1), metric=values["name"])
    change = stats.change_verdict(at_1x.difference, at_2x.difference, sd, (1, 1), (1, 1), metric=values["name"])
    if at_2x.difference < -at_2x.threshold:
        answer = "schedule_ahead"
    elif not at_2x.real:
        answer = "schedule"
    elif -change.difference > change.threshold:
        answer = "both"
    else:
        answer = "starvation"
    return Answer("gap_alone", answer, values, {"at_1x": at_1x, "at_2x": at_2x, "change": change})


# ---- EQLv2 against sigmoid CE --------------------------------------------------------------------------
def eqlv2_below_ce(params: dict, root: str | Path, paper: dict) -> Answer:
    """EQLv2 against sigmoid CE at 1x and 2x on the claims' metric, and its gradient balance (diagnostics).
    Answers: not_run; pending (no 2x runs); no_disagreement (above CE at 1x); schedule (level or below at 1x,
    above at 2x beyond the change's noise); inconclusive (above at 2x, the change within noise);
    partly_schedule (moves towards CE beyond noise, not above); not_schedule. values["mechanism"]: None or
    {towards (bool), eqlv2_r, ce_r, eqlv2_f, ce_f, mu}; verdicts: at_1x, rare, on_top (GAP on EQLv2's APr),
    at_2x, change."""
    spec = question(params, "eqlv2_below_ce")
    runs, diagnostics = spec.get("runs") or {}, spec.get("diagnostics") or {}
    name_table, method_key = _key(spec["rows"]["method"])
    ce_key = _key(spec["rows"]["ce"])[1]
    table = tables.build(params, name_table, root, paper) if name_table in sections(params) else None
    ce_runs, eqlv2_runs = (table.row(k).found if table is not None else [] for k in (ce_key, method_key))
    values = {f"{k}_run": r for k, r in runs.items()}
    if not ce_runs or not eqlv2_runs:
        return Answer("eqlv2_below_ce", "not_run", values)
    iou = claims.choose_iou(ce_runs + eqlv2_runs, root)[0]
    rare_iou = claims.choose_iou(ce_runs + eqlv2_runs, root, "APr")[0]
    (e, ne), (s, ns) = _mean(eqlv2_runs, f"{iou}.AP", root), _mean(ce_runs, f"{iou}.AP", root)
    er, sr = _mean(eqlv2_runs, f"{rare_iou}.APr", root)[0], _mean(ce_runs, f"{rare_iou}.APr", root)[0]
    paper_path, p_diff = claims.paper_difference(table, table.row(method_key), table.row(ce_key), f"{iou}.AP", "bbox.AP")
    col = table.metrics.index(paper_path)
    sd, sd_r = claims.seed_sd(params, f"{iou}.AP", root), claims.seed_sd(params, f"{rare_iou}.APr", root)
    name, rare_name = claims.metric_name(f"{iou}.AP"), claims.metric_name(f"{rare_iou}.APr")
    values.update(name=name, rare_name=rare_name, paper_name=claims.metric_name(paper_path),
                  paper_eqlv2=table.row(method_key).paper[col], paper_ce=table.row(ce_key).paper[col],
                  eqlv2=e, ce=s, n_eqlv2=ne, n_ce=ns, eqlv2_r=er, ce_r=sr,
                  softmax=_read(runs.get("softmax"), f"{iou}.AP", root), mechanism=None)
    verdicts = {"at_1x": stats.verdict(e - s, sd, (ne, ns), p_diff or 1.0, metric=name)}
    de, ds = (load_diagnostics(diagnostics[k], root) if diagnostics.get(k) else None for k in ("method", "ce"))
    if de and ds and "objective" in (de.get("gradients") or {}) and "objective" in (ds.get("gradients") or {}) \
            and er is not None and sr is not None:
        means = [figures.group_means(d["gradients"]["objective"]["ratio"], d["frequency"]) for d in (de, ds)]
        if all(m["r"] is not None and m["f"] is not None for m in means):
            values["mechanism"] = {"towards": abs(means[0]["r"] - EQLV2_MU) < abs(means[1]["r"] - EQLV2_MU),
                                   "eqlv2_r": means[0]["r"], "ce_r": means[1]["r"], "eqlv2_f": means[0]["f"],
                                   "ce_f": means[1]["f"], "mu": EQLV2_MU}
            verdicts["rare"] = stats.verdict(er - sr, sd_r, (ne, ns), metric=rare_name)
            with_gap = _read(runs.get("with_gap"), f"{rare_iou}.APr", root)
            if with_gap is not None:
                values["with_gap_r"] = with_gap
                verdicts["on_top"] = stats.verdict(with_gap - er, sd_r, (ne, 1), metric=rare_name)
    e2, s2 = (_read(runs.get(k), f"{iou}.AP", root) for k in ("method_2x", "ce_2x"))
    if e2 is None or s2 is None:
        return Answer("eqlv2_below_ce", "pending", values, verdicts)
    values.update(eqlv2_2x=e2, ce_2x=s2)
    first = verdicts["at_1x"]
    second = verdicts["at_2x"] = stats.verdict(e2 - s2, sd, (1, 1), p_diff or 1.0, metric=name)
    change = verdicts["change"] = stats.change_verdict(e - s, e2 - s2, sd, (ne, ns), (1, 1), metric=name)
    grows = change.difference > change.threshold
    if first.status == "reproduced":
        answer = "no_disagreement"
    elif second.status == "reproduced":
        answer = "schedule" if grows else "inconclusive"
    else:
        answer = "partly_schedule" if grows else "not_schedule"
    return Answer("eqlv2_below_ce", answer, values, verdicts)


# ---- GAP's gain: optimizer and schedule ----------------------------------------------------------------
def gain(params: dict, root: str | Path) -> Answer:
    """GAP's rare-AP gain over sigmoid CE (questions.gain): under SGD at the shortest and the longest of its
    `lengths` (figures.gain_by_length, the same numbers as the overview's figure), and under AdamW at 1x
    (adamw, one seed each). Verdicts: sgd_1x, sgd_2x, change (2x gain - 1x
    gain), adamw (GAP's gain under AdamW), adamw_lift (AdamW's CE - SGD's CE). Answers: not_run; no_gain (none
    under SGD at 1x); then by what the longer and the AdamW runs show: holds_both (a gain at 2x and under
    AdamW), speed_kept (AdamW gives CE the rare AP by itself and GAP adds none there, yet under SGD the lead
    holds at 2x), speed (AdamW as before, the 2x gain shrunk, gone or turned), unsettled (any other combination), pending (the 2x or AdamW runs not in results/). The states of
    each side: schedule_state and adamw_state."""
    spec = question(params, "gain")
    lengths = sorted(spec.get("lengths") or [], key=lambda e: float(e["length"]))
    adamw = spec.get("adamw") or {}
    values = {"adamw_ce_run": adamw.get("ce"), "adamw_gap_run": adamw.get("gap")}
    runs = [r for k in ("ce", "gap") for r in found_runs(params, lengths[0][k], root)] if lengths else []
    if not runs:
        return Answer("gain", "not_run", values)
    iou = claims.choose_iou(runs, root, "APr")[0]
    name = claims.metric_name(f"{iou}.APr")
    gains = [g for g in figures.gain_by_length(params, root, (f"{iou}.APr",)) if g["verdict"] is not None]
    if not gains or gains[0]["length"] != float(lengths[0]["length"]):   # no rare ground truth (LVIS: APr -1)
        return Answer("gain", "not_run", values)
    first, last = gains[0], gains[-1]
    c1, n_ce, g1, n_gap = fmean(first["ce"]), len(first["ce"]), fmean(first["gap"]), len(first["gap"])
    sd = claims.seed_sd(params, f"{iou}.APr", root)
    values.update(name=name, ce=c1, gap=g1, n_ce=n_ce, n_gap=n_gap)
    verdicts = {"sgd_1x": first["verdict"]}
    if last is not first:
        c2, g2 = fmean(last["ce"]), fmean(last["gap"])
        values.update(length=last["length"], ce_long=c2, gap_long=g2, n_ce_long=len(last["ce"]),
                      n_gap_long=len(last["gap"]))
        verdicts["sgd_2x"] = last["verdict"]
        verdicts["change"] = stats.change_verdict(g1 - c1, g2 - c2, sd, (n_ce, n_gap),
                                                  (len(last["ce"]), len(last["gap"])), metric=name)
    a_ce, a_gap = (_read(adamw.get(k), f"{iou}.APr", root) for k in ("ce", "gap"))
    if a_ce is not None and a_gap is not None:
        values.update(adamw_ce=a_ce, adamw_gap=a_gap)
        verdicts["adamw"] = stats.verdict(a_gap - a_ce, sd, (1, 1), metric=name)
        verdicts["adamw_lift"] = stats.verdict(a_ce - c1, sd, (n_ce, 1), metric=name)
    return Answer("gain", _gain_answer(verdicts), values, verdicts)


def schedule_state(v: dict) -> str:
    """What the longer schedule does to GAP's 1x gain: holds, shrinks (still real), fades (no longer real, and
    smaller beyond noise), turns (opposite), unclear (within noise of both zero and the 1x gain)."""
    second, change = v["sgd_2x"], v["change"]
    if second.status == "opposite":
        return "turns"
    shrank = change.difference < -change.threshold
    if second.status == "reproduced":
        return "shrinks" if shrank else "holds"
    return "fades" if shrank else "unclear"


def adamw_state(v: dict) -> str:
    """What AdamW shows: gain (GAP's gain is real under AdamW too), speed (AdamW lifts sigmoid CE's rare AP by
    itself and GAP adds none on top), unclear (neither)."""
    if v["adamw"].status == "reproduced":
        return "gain"
    return "speed" if v["adamw_lift"].status == "reproduced" else "unclear"


def _gain_answer(v: dict) -> str:
    if v["sgd_1x"].status != "reproduced":
        return "no_gain"
    if "sgd_2x" not in v or "adamw" not in v:
        return "pending"
    longer, adamw = schedule_state(v), adamw_state(v)
    if adamw == "speed":
        return "speed_kept" if longer == "holds" else "speed" if longer in ("shrinks", "fades", "turns") else "unsettled"
    if adamw == "gain" and longer in ("holds", "shrinks"):
        return "holds_both"
    return "unsettled"


__all__ = ["Answer", "gap_alone", "eqlv2_below_ce", "gain", "omega_by_group", "dataset_facts", "found_runs",
           "COMPARE", "declared", "compare",
           "schedule_state", "adamw_state"]

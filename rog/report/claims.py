"""Whether the paper's claims hold on our results: every verdict of the compendium, in one place.

claims(params): the claims of paper_numbers.yaml (`claims:`), each a comparison of table rows (pairs of
better / worse). Each pair gets exactly one of three verdicts, and its text states the rule:

- the noise: a row's seed spread is the pooled sample standard deviation of the registry's rows that
  have several seeds (pooled_spread: sum of squared deviations from each row's mean over the sum of
  n - 1, per metric; in the default registry the 3-seed rows), also for rows run with one seed. The noise of a
  difference of two row means with n_a and n_b seeds is sd x sqrt(1/n_a + 1/n_b). Without any
  multi-seed row (or with a spread below it) the sd is the floor MIN_EFFECT.
- "reproduced" when |ours| > NOISE_K (2) x that noise in the claim's direction (better > worse, as the
  paper states it; the paper's own difference is shown beside); "opposite" when beyond it the other
  way; "within noise" otherwise.
- the metric: the claim's metric (e.g. APr) on mask AP (segm) when the pair's runs learned masks
  (their mean mask AP >= MASK_SHARE (0.5) x their mean box AP), else on box AP (bbox); the other one
  is shown beside. A claim's `iou:` in paper_numbers.yaml (with `iou_why:`) or the caller's `iou=`
  forces one. The paper's difference is read at the judged metric where the paper's table has it for
  both rows, else at the claim's `paper_metric` (or `metric`), and labelled with what it is.

A claim's verdict is its pairs' verdict where they agree ("reproduced", "within noise", "opposite",
with how many pairs ran), "mixed" with the counts where they do not, "not run" where none ran. A pair
whose runs come from two regimes (some made with params.yaml as it is, some with older parameters:
rog.report.regime) is "not comparable" and counts as not run.
k_sweep_claim: Table 3's (the baseline's rare AP depends more on K than ROG's), by the same noise
rule on the share of rare AP a smaller K misses; balance_verdict: Figures 4 and 5 (GAP's rare/frequent
balance closer to 1), by the same rule on |log(rare/frequent)| with the seed spread of the log balance
(rog.report.figures.log_balance_spread); gradient_magnitude_verdict: Table 2's lambda-6 run (is GAP alone's
small gradient the cause?); convergence_verdict: the 2x runs end within the tolerance of their 1x runs.
"""
from __future__ import annotations

import math
from pathlib import Path

from rog.pipeline.registry import sections
from rog.report.markdown import signed
from rog.report.prose import say
from rog.report.regime import older_runs, regime
from rog.report.results import aggregate, load_metrics, paper_numbers, value
from rog.report.stats import MIN_EFFECT, NOISE_K, VERDICTS, floor, judge, noise, pooled, threshold, verdict  # noqa: F401 (re-exported)
from rog.report.tables import Table, build

MASK_SHARE = 0.5  # judge on mask AP when the runs' mask AP is at least this share of their box AP
MIN_SHARE = 1.0  # Table 3: the floor (percentage points) of the seed sd of the share of rare AP a K misses
IOU_NAMES = {"bbox": "box", "segm": "mask"}


def pooled_spread(params: dict, path: str | None, root: str | Path = ".", read=None) -> dict:
    """The seed spread of metric `path` (or of `read(run)` -> float or None, when given) pooled over the
    registry's rows with several seeds found.

    Rows are those of every table and figure of params (the same run list counted once). Returns
    {"sd": pooled sample sd or None, "rows": rows pooled, "seeds": [runs per row], "df": sum of n - 1}.
    """
    read = read or (lambda run: value(load_metrics(run, root), path))
    seen: set[tuple[str, ...]] = set()
    groups = []
    for spec in sections(params).values():
        for row in (spec or {}).get("rows") or []:
            runs = tuple(row.get("runs") or []) if isinstance(row, dict) else ()
            if len(runs) < 2 or runs in seen:
                continue
            seen.add(runs)
            groups.append([v for v in map(read, runs) if v is not None])
    spread = pooled(groups)
    return {"sd": spread.sd, "rows": spread.groups, "seeds": list(spread.seeds), "df": spread.df}


def seed_sd(params: dict, path: str, root: str | Path = ".") -> float:
    """pooled_spread's sd of metric `path`, floored (stats.floor): the sd every verdict's noise rests on."""
    return floor(pooled_spread(params, path, root)["sd"])


def choose_iou(runs: list[str], root: str | Path = ".", metric: str = "AP") -> tuple[str, str]:
    """("segm" or "bbox", why) for judging `metric` (AP, or a frequency group's: APr, APc, APf): mask AP where
    every run found has mask `metric` and their mean is >= MASK_SHARE x their mean box `metric`; box
    otherwise. Per group, because rare masks can stay unlearned while the frequent ones are learned."""
    loaded = [m for m in (load_metrics(r, root) for r in runs) if m is not None]
    box = aggregate([value(m, f"bbox.{metric}") for m in loaded])[0]
    masks = [value(m, f"segm.{metric}") for m in loaded]
    if box is None or not masks or any(v is None for v in masks):
        return "bbox", f"box {metric}: " + ("some runs have no mask AP" if any(v is not None for v in masks)
                                            else "the runs have no mask AP")
    mask = aggregate(masks)[0]
    if mask >= MASK_SHARE * box:
        return "segm", f"mask {metric}: the runs' mask {metric} {mask:.1f} >= {MASK_SHARE:g} x box {metric} {box:.1f}"
    return "bbox", (f"box {metric}: the runs' mask {metric} {mask:.1f} < {MASK_SHARE:g} x box {metric} {box:.1f}, "
                    "masks not learned")


def metric_name(path: str) -> str:
    """The metric path in words: segm.APr -> mask APr."""
    iou, metric = path.split(".", 1)
    return f"{IOU_NAMES.get(iou, iou)} {metric}"


def _noise_text(spread: dict, n_b: int, n_w: int) -> tuple[float, str]:
    """(noise of the difference, how it was computed)."""
    sd = spread["sd"]
    if sd is None or sd < MIN_EFFECT:
        source = say("pair.floor_below" if sd is not None else "pair.floor_no_rows", floor=MIN_EFFECT, sd=sd)
        sd = MIN_EFFECT
    else:
        seeds = str(spread["seeds"][0]) if len(set(spread["seeds"])) == 1 else "/".join(map(str, spread["seeds"]))
        source = say("pair.pooled", sd=sd, rows=spread["rows"], seeds=seeds)
    found = noise(sd, n_b, n_w)
    return found, say("pair.noise", noise=found, source=source, n_b=n_b, n_w=n_w)


def paper_difference(table: Table, better, worse, judged: str, fallback: str) -> tuple[str, float | None]:
    """(metric, the paper's better - worse on it): at `judged` where the paper's table has it for both rows
    (like with like: mask AP beside mask AP), else at `fallback` (None where the paper has no number)."""
    for path in (judged, fallback):
        if path in table.metrics:
            col = table.metrics.index(path)
            if better.paper[col] is not None and worse.paper[col] is not None:
                return path, better.paper[col] - worse.paper[col]
    return fallback, None


def _pair_verdict(table: Table, better: str, worse: str, metric: str, paper_metric: str | None,
                  iou: str, params: dict, root: str | Path, spreads: dict,
                  found_regime: dict | None = None) -> tuple[str, str, dict]:
    """One pair's verdict (VERDICTS, "not run", or "not comparable" when `found_regime` (regime.regime) puts
    some of its runs in the current regime and others in an older one), its text and its numbers, on `metric` read with iou
    type `iou`. The numbers: {better, worse (labels), keys (their rows), metric (judged), ours (diff or None), paper (diff or
    None), paper_metric, iou, threshold (NOISE_K x noise or None), status}."""
    b, w = table.row(better), table.row(worse)
    judged = f"{iou}.{metric.split('.', 1)[1]}"
    beside = f"{'bbox' if iou == 'segm' else 'segm'}.{metric.split('.', 1)[1]}"

    def mean(row, path):
        return aggregate([value(load_metrics(r, root), path) for r in row.found])

    (mb, _, nb), (mw, _, nw) = mean(b, judged), mean(w, judged)
    if mb is None or mw is None:
        missing = [r.label for r, m in ((b, mb), (w, mw)) if m is None]
        return "not run", say("pair.not_run", better=b.label, worse=w.label, metric=metric_name(judged),
                              missing=", ".join(missing)), {
            "better": b.label, "worse": w.label, "keys": (better, worse), "iou": iou, "metric": metric_name(judged), "ours": None,
            "paper": None,
            "paper_metric": metric_name(paper_metric or metric), "threshold": None, "status": "not run"}
    paper_path, paper_diff = paper_difference(table, b, w, judged, paper_metric or metric)
    runs = b.found + w.found
    older = older_runs(found_regime, runs)
    if older:
        return "not comparable", say("pair.not_comparable", better=b.label, worse=w.label, older=", ".join(older)), {
            "better": b.label, "worse": w.label, "keys": (better, worse), "iou": iou, "metric": metric_name(judged), "ours": None,
            "paper": paper_diff, "paper_metric": metric_name(paper_path), "threshold": None,
            "status": "not comparable"}
    diff = mb - mw
    if judged not in spreads:
        spreads[judged] = pooled_spread(params, judged, root)
    pair_noise, how = _noise_text(spreads[judged], nb, nw)
    status = judge(diff, pair_noise, 1.0)  # the claim's direction: better > worse
    relation = ">" if abs(diff) > threshold(pair_noise) else "<="
    paper_text = f"{signed(paper_diff)} {metric_name(paper_path)}" if paper_diff is not None else "n/a"
    ob, ow = mean(b, beside)[0], mean(w, beside)[0]
    other = say("pair.beside", metric=metric_name(beside), diff=ob - ow) if ob is not None and ow is not None else ""
    return status, say("pair.judged", status=status, better=b.label, worse=w.label, diff=diff,
                       metric=metric_name(judged), mb=mb, mw=mw, paper=paper_text, relation=relation,
                       k=f"{NOISE_K:g}", threshold=threshold(pair_noise), how=how) + other, {
        "better": b.label, "worse": w.label, "keys": (better, worse), "iou": iou, "metric": metric_name(judged), "ours": diff,
        "paper": paper_diff,
        "paper_metric": metric_name(paper_path), "threshold": threshold(pair_noise), "status": status, "n": (nb, nw),
        "beside": (metric_name(beside), ob - ow) if ob is not None and ow is not None else None}


def claims(params: dict, root: str | Path = ".", paper: dict | None = None, tables: list[str] | None = None,
           iou: str | None = None) -> list[dict]:
    """Each claim of paper_numbers.yaml whose table is in `tables` (default: all) with a verdict (see the
    module docstring). `iou`: "segm" or "bbox" to judge every claim on it; None: by choose_iou's rule."""
    paper = paper if paper is not None else paper_numbers()
    built: dict[str, Table] = {}
    spreads: dict[str, dict] = {}
    found_regime = regime(params, root)
    out = []
    for claim in paper.get("claims") or []:
        name = claim["table"]
        if tables is not None and name not in tables:
            continue
        if name not in sections(params):
            continue
        table = built.setdefault(name, build(params, name, root, paper))
        pairs = claim.get("pairs") or [[claim["better"], claim["worse"]]]
        runs = [r for pair in pairs for key in pair for r in table.row(key).found]
        group = claim["metric"].split(".", 1)[1]   # AP, APr, ...: masks are judged learned per group
        if iou is not None:
            claim_iou, basis = iou, f"{IOU_NAMES.get(iou, iou)} AP: chosen by the caller"
        elif claim.get("iou"):
            claim_iou = claim["iou"]
            basis = f"{IOU_NAMES.get(claim_iou, claim_iou)} AP: {claim.get('iou_why') or 'set by the claim'}"
        else:
            claim_iou, basis = choose_iou(runs, root, group)
        # each pair on its own runs' metric (a pair of unlearned masks is not judged on mask AP because the
        # claim's other pairs learned them), unless the caller or the claim fixes one
        fixed = iou is not None or bool(claim.get("iou"))
        pair_ious = [claim_iou if fixed else choose_iou(table.row(b).found + table.row(w).found, root, group)[0]
                     for b, w in pairs]
        if not fixed and len(set(pair_ious)) > 1:
            basis = (f"per pair: mask {group} where the pair's runs learned masks (mask {group} >= {MASK_SHARE:g} x "
                     f"box {group}), "
                     f"else box AP; {pair_ious.count('segm')} of {len(pairs)} pairs on mask AP")
        results = [_pair_verdict(table, b, w, claim["metric"], claim.get("paper_metric"), pair_iou, params,
                                 root, spreads, found_regime) for (b, w), pair_iou in zip(pairs, pair_ious)]
        statuses = [s for s, _, _ in results]
        ran = [s for s in statuses if s in VERDICTS]
        counts = {v: ran.count(v) for v in VERDICTS if ran.count(v)}
        if not ran:
            verdict = "not comparable" if "not comparable" in statuses else "not run"
        elif len(counts) == 1:
            verdict = ran[0] + (f" ({len(ran)} of {len(statuses)} pairs run)" if len(ran) < len(statuses) else "")
        else:
            verdict = "mixed: " + ", ".join(f"{n} {v}" for v, n in counts.items())
            verdict += f" ({len(ran)} of {len(statuses)} pairs run)" if len(ran) < len(statuses) else ""
        out.append({"id": claim["id"], "text": claim["text"], "short": claim.get("short"), "table": name, "verdict": verdict, "iou": claim_iou,
                    "basis": basis, "statuses": statuses, "details": [d for _, d, _ in results],
                    "pairs": [p for _, _, p in results]})
    return out


def claims_markdown(found: list[dict]) -> str:
    if not found:
        return "No claim of the paper is checked on this table.\n"
    lines = [say("claims.rule", k=f"{NOISE_K:g}", share=f"{MASK_SHARE:g}"), ""]
    for c in found:
        lines.append(f"- **{c['verdict']}** — {c['text']} (judged on {c['basis']})")
        lines.extend(f"  - {d}" for d in c["details"])
    return "\n".join(lines) + "\n"


def _share_above(low: float | None, high: float | None) -> float | None:
    """Percent of the AP at the largest K that only a K above the smaller one finds: 100 (high - low) /
    high. Unlike the relative gain it stays finite when the AP at the smaller K is 0."""
    if low is None or high is None or high <= 0:
        return None
    return 100.0 * (high - low) / high


def _rare_shares(row: dict, k: int, k_big: int, iou: str, root: str | Path) -> list[float]:
    """Per run of a Table 3 row: the share (percent) of its rare AP at K = k_big missed at K = k;
    runs with no rare AP at k_big (share undefined) are left out."""
    out = []
    for run in row["found"]:
        metrics = load_metrics(run, root)
        share = _share_above(value(metrics, f"{iou}.K{k}.APr"), value(metrics, f"{iou}.K{k_big}.APr"))
        if share is not None:
            out.append(share)
    return out


def k_sweep_verdict(sweep: dict, k: int, root: str | Path = ".", paper: dict | None = None) -> dict:
    """Table 3's claim at one smaller K against the sweep's largest, by the noise rule of the pairs.

    The measure: the share of a run's rare AP at the largest K that K = k misses (_share_above: it
    orders runs as the paper's relative gain does and stays defined where APr is 0 at k). ours =
    baseline's mean share - ROG's; noise = the share's sample sd pooled over the two rows' seeds (floor
    MIN_SHARE) x sqrt(1/n_a + 1/n_b); judged as the pairs (judge) with the paper's sign: its shares at
    K 50 of the AP at K 100. Returns {k, k_big, iou, status, ours, paper, threshold, base, rog, paper_base,
    paper_rog, sd, seeds} (status "not checked" and None numbers where a row has no share)."""
    paper = paper if paper is not None else paper_numbers()
    iou = paper["table3"]["columns"]["APr"].split(".")[0]
    k_big = max(sweep["k_common"])          # the largest K that every run has
    base_row, rog_row = sweep["rows"][0], sweep["rows"][1]
    base, rog = (_rare_shares(r, k, k_big, iou, root) for r in (base_row, rog_row))
    p_base, p_rog = (sorted(r["paper"].items())[:2] for r in (base_row, rog_row))
    paper_base = _share_above(p_base[0][1][0], p_base[1][1][0])
    paper_rog = _share_above(p_rog[0][1][0], p_rog[1][1][0])
    out = {"k": k, "k_big": k_big, "iou": iou, "status": "not checked", "ours": None, "threshold": None, "base": None,
           "rog": None, "paper_base": paper_base, "paper_rog": paper_rog, "paper": paper_base - paper_rog,
           "sd": None, "seeds": (len(base), len(rog))}
    if not base or not rog:
        return out
    sd = floor(pooled([base, rog]).sd, MIN_SHARE)
    mb, mr = sum(base) / len(base), sum(rog) / len(rog)
    found = verdict(mb - mr, sd, (len(base), len(rog)), out["paper"])
    out.update(status=found.status, ours=mb - mr, threshold=found.threshold, base=mb, rog=mr, sd=sd)
    return out


PAPER_K = 50  # the paper's smaller K (Table 3: K 50 -> 100): the K of Table 3's headline verdict


def k_sweep_claim(sweep: dict, root: str | Path = ".", paper: dict | None = None) -> str:
    """The paper's Table 3 claim (the baseline's rare AP depends more on K than ROG's) as one verdict
    and a plain sentence, then the same check at every smaller K of our sweep, one line each.

    The verdict is k_sweep_verdict's at the paper's smaller K (PAPER_K) when our sweep has it, else at
    the sweep's smallest K, each against our largest K (on LT-Glyphs an image holds ~10 glyphs, so
    small K already bind).
    """
    if len(sweep["rows"]) < 2 or any(not r["ours"] for r in sweep["rows"]) or len(sweep["k_common"]) < 2:
        return say("k_sweep.needs_rows")
    smaller = sorted(sweep["k_common"])[:-1]
    checks = {k: k_sweep_verdict(sweep, k, root, paper) for k in smaller}
    head = checks[PAPER_K if PAPER_K in checks else smaller[0]]
    base, rog = sweep["rows"][0]["label"], sweep["rows"][1]["label"]
    paper_text = say("k_sweep.paper", base_label=base, rog_label=rog, **head)
    if head["status"] == "not checked":
        return say("k_sweep.not_checked", paper_text=paper_text, **head)
    rule = say("k_sweep.rule", k_noise=f"{NOISE_K:g}", n_a=head["seeds"][0], n_b=head["seeds"][1], **head)
    sentence = say("k_sweep.sentence", base_label=base, rog_label=rog, paper_text=paper_text, rule=rule, **head)
    lines = [say("k_sweep.line_not_checked", **c) if c["status"] == "not checked" else
             say("k_sweep.line", base_label=base, rog_label=rog, k_noise=f"{NOISE_K:g}", **c)
             for c in checks.values()]
    return sentence + "\n" + "\n".join(f"- {line}" for line in lines)


def balance_verdict(rows: list[dict], baseline: str, method: str, what: str, spread: dict | None = None) -> str:
    """Whether `method`'s rare/frequent balance is closer to 1 than `baseline`'s (the paper's claim), by the
    noise rule on |log(rare/frequent)|: `spread` is pooled_spread of the log balance over the multi-seed rows
    (None or sd None: no seed noise known, and the verdict says so)."""
    by = {r["key"]: r for r in rows}
    if baseline not in by or method not in by or by[baseline]["balance"] is None or by[method]["balance"] is None:
        return say("balance.missing", what=what)
    b, m = by[baseline]["balance"], by[method]["balance"]
    if b <= 0 or m <= 0:
        return say("balance.not_positive", what=what, m=m, b=b)
    closer = abs(math.log(b)) - abs(math.log(m))          # > 0: the method is nearer 1 (balanced)
    numbers = say("balance.numbers", m=m, b=b, method=method, baseline=baseline)
    if not spread or spread.get("sd") is None:
        return say("balance.no_noise", status="reproduced" if closer > 0 else "opposite", what=what, numbers=numbers)
    found = verdict(closer, max(spread["sd"], 1e-6), (1, 1))       # two one-seed runs
    return say("balance.judged", status=found.status, what=what, numbers=numbers, method=method, baseline=baseline,
               k=f"{NOISE_K:g}", threshold=found.threshold, sd=spread["sd"], rows=spread["rows"])


def convergence_verdict(rows: list[dict]) -> str:
    """One sentence per setting: converged, not converged (by how much), or which run is missing."""
    out = []
    for r in rows:
        if r["converged"] is None:
            why = (say("convergence.no_results", runs=", ".join(r["missing"])) if r["missing"]
                   else say("convergence.no_ap"))
            out.append(say("convergence.not_checked", setting=r["setting"], why=why))
            continue
        out.append(say("convergence.checked", setting=r["setting"],
                       state="converged" if r["converged"] else "NOT converged", box=r["bbox"]["diff"],
                       mask=r["segm"]["diff"], tolerance=r["tolerance"]))
    return "\n".join(out)


def gradient_magnitude_verdict(totals: list[dict], params: dict, root: str | Path = ".", *, gap: str, louder: str,
                               reference: str) -> str:
    """Is GAP alone's small gradient why it trains a poor detector? `totals`: figures.gradient_totals rows.
    GAP with a larger lambda (`louder`) against GAP (`gap`), with AP loss (`reference`) as the magnitude to
    match: magnitude explains it when the louder run matches the reference's ranking gradient and its AP rises
    beyond 2 x the noise of two one-seed runs."""
    by = {r["key"]: r for r in totals}
    if any(k not in by or by[k]["gap"] is None for k in (gap, louder, reference)):
        return say("magnitude.missing_rows", rows=", ".join((gap, louder, reference)))
    runs = [by[k]["run"] for k in (gap, louder, reference)]
    iou = choose_iou(runs, root)[0]
    ap = [value(load_metrics(r, root), f"{iou}.AP") for r in runs]
    if any(a is None for a in ap):
        return say("magnitude.missing_ap")
    spread = pooled_spread(params, f"{iou}.AP", root)["sd"]
    two_runs = noise(floor(spread), 1, 1)  # two one-seed runs
    g_gap, g_louder, g_ref = (by[k]["gap"] for k in (gap, louder, reference))
    numbers = say("magnitude.numbers", gap_run=runs[0], louder_run=runs[1], reference_run=runs[2], g_gap=g_gap,
                  g_louder=g_louder, g_ref=g_ref, ap_gap=ap[0], ap_louder=ap[1], ap_ref=ap[2],
                  name=metric_name(iou + ".AP"))
    rule = say("magnitude.rule", k=f"{NOISE_K:g}", threshold=threshold(two_runs))
    if g_louder < g_ref:
        return say("magnitude.inconclusive", numbers=numbers, rule=rule)
    if ap[1] - ap[0] > threshold(two_runs):
        return say("magnitude.part", numbers=numbers, rule=rule)
    return say("magnitude.not_the_cause", numbers=numbers, rule=rule)

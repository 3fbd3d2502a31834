"""Whether the paper's claims hold on our results: every verdict of the compendium, in one place.

claims(params): the claims of paper_numbers.yaml (`claims:`), each a comparison of table rows (pairs of
better / worse). Each pair gets exactly one of three verdicts, and its text states the rule:

- the noise: a row's seed spread is the pooled sample standard deviation of the registry's rows that
  have several seeds (pooled_spread: sum of squared deviations from each row's mean over the sum of
  n - 1, per metric; today the 3-seed rows), also for rows run with one seed. The noise of a
  difference of two row means with n_a and n_b seeds is sd x sqrt(1/n_a + 1/n_b). Without any
  multi-seed row (or with a spread below it) the sd is the floor MIN_EFFECT.
- "reproduced" when |ours| > NOISE_K (2) x that noise with the paper's sign (the claim's direction,
  better > worse, where the paper has no number); "opposite" when beyond it with the other sign;
  "within noise" otherwise.
- the metric: the claim's metric (e.g. APr) on mask AP (segm) when the pair's runs learned masks
  (their mean mask AP >= MASK_SHARE (0.5) x their mean box AP), else on box AP (bbox); the other one
  is shown beside. `iou=` forces one.

A claim's verdict is its pairs' verdict where they agree ("reproduced", "within noise", "opposite",
with how many pairs ran), "mixed" with the counts where they do not, "not run" where none ran.
k_sweep_claim: Table 3's (the baseline's rare AP depends most on K); balance_verdict: Figures 4 and 5
(GAP's rare/frequent balance closer to 1); convergence_verdict: the 2x runs end within the tolerance
of their 1x runs.
"""
from __future__ import annotations

import math
from pathlib import Path

from rog.pipeline.registry import sections
from rog.report.results import aggregate, load_metrics, paper_numbers, value
from rog.report.tables import Table, build

MIN_EFFECT = 0.1  # AP points: the floor of the seed sd (no multi-seed row, or a smaller pooled spread)
NOISE_K = 2.0  # a difference is real when it exceeds NOISE_K x the noise of a difference
MASK_SHARE = 0.5  # judge on mask AP when the runs' mask AP is at least this share of their box AP
MIN_SHARE = 1.0  # Table 3: shares (percent) closer than this are a tie
VERDICTS = ("reproduced", "within noise", "opposite")
IOU_NAMES = {"bbox": "box", "segm": "mask"}


def pooled_spread(params: dict, path: str, root: str | Path = ".") -> dict:
    """The seed spread of metric `path` pooled over the registry's rows with several seeds found.

    Rows are those of every table and figure of params (the same run list counted once). Returns
    {"sd": pooled sample sd or None, "rows": rows pooled, "seeds": [runs per row], "df": sum of n - 1}.
    """
    seen: set[tuple[str, ...]] = set()
    squares, df, seeds = 0.0, 0, []
    for spec in sections(params).values():
        for row in (spec or {}).get("rows") or []:
            runs = tuple(row.get("runs") or []) if isinstance(row, dict) else ()
            if len(runs) < 2 or runs in seen:
                continue
            seen.add(runs)
            found = [v for v in (value(load_metrics(r, root), path) for r in runs) if v is not None]
            if len(found) < 2:
                continue
            mean = sum(found) / len(found)
            squares += sum((v - mean) ** 2 for v in found)
            df += len(found) - 1
            seeds.append(len(found))
    return {"sd": math.sqrt(squares / df) if df else None, "rows": len(seeds), "seeds": seeds, "df": df}


def choose_iou(runs: list[str], root: str | Path = ".") -> tuple[str, str]:
    """("segm" or "bbox", why): mask AP where the runs' mean mask AP >= MASK_SHARE x their mean box AP."""
    loaded = [load_metrics(r, root) for r in runs]
    box = aggregate([value(m, "bbox.AP") for m in loaded])[0]
    mask = aggregate([value(m, "segm.AP") for m in loaded])[0]
    if box is None or mask is None:
        return "bbox", "box AP: the runs have no mask AP"
    if mask >= MASK_SHARE * box:
        return "segm", f"mask AP: the runs' mask AP {mask:.1f} >= {MASK_SHARE:g} x box AP {box:.1f}"
    return "bbox", f"box AP: the runs' mask AP {mask:.1f} < {MASK_SHARE:g} x box AP {box:.1f}, masks not learned"


def _name(path: str) -> str:
    iou, metric = path.split(".", 1)
    return f"{IOU_NAMES.get(iou, iou)} {metric}"


def _noise_text(spread: dict, n_b: int, n_w: int) -> tuple[float, str]:
    """(noise of the difference, how it was computed)."""
    sd = spread["sd"]
    if sd is None or sd < MIN_EFFECT:
        source = (f"sd floor {MIN_EFFECT:g}" + (f" (pooled seed sd {sd:.2f} below it)" if sd is not None
                                                 else " (no row has several seeds)"))
        sd = MIN_EFFECT
    else:
        shape = (f"{spread['rows']} rows of {spread['seeds'][0]} seeds" if len(set(spread["seeds"])) == 1
                 else f"{spread['rows']} rows of {'/'.join(map(str, spread['seeds']))} seeds")
        source = f"seed sd {sd:.2f} (pooled over {shape})"
    noise = sd * math.sqrt(1 / n_b + 1 / n_w)
    return noise, f"noise {noise:.2f} = {source} x sqrt(1/{n_b} + 1/{n_w})"


def judge(diff: float, noise: float, expected_sign: float) -> str:
    """reproduced / opposite when |diff| > NOISE_K x noise (by sign against `expected_sign`), else within noise."""
    if abs(diff) <= NOISE_K * noise:
        return "within noise"
    return "reproduced" if (diff > 0) == (expected_sign > 0) else "opposite"


def _pair_verdict(table: Table, better: str, worse: str, metric: str, paper_metric: str | None,
                  iou: str, params: dict, root: str | Path, spreads: dict) -> tuple[str, str]:
    """One pair's verdict (VERDICTS or "not run") and its text, on `metric` read with iou type `iou`."""
    b, w = table.row(better), table.row(worse)
    judged = f"{iou}.{metric.split('.', 1)[1]}"
    beside = f"{'bbox' if iou == 'segm' else 'segm'}.{metric.split('.', 1)[1]}"

    def mean(row, path):
        return aggregate([value(load_metrics(r, root), path) for r in row.found])

    (mb, _, nb), (mw, _, nw) = mean(b, judged), mean(w, judged)
    if mb is None or mw is None:
        missing = [r.label for r, m in ((b, mb), (w, mw)) if m is None]
        return "not run", f"{b.label} vs {w.label}: no {_name(judged)} for {', '.join(missing)}"
    paper_path = paper_metric or metric
    paper_col = table.metrics.index(paper_path)
    paper_diff = None
    if b.paper[paper_col] is not None and w.paper[paper_col] is not None:
        paper_diff = b.paper[paper_col] - w.paper[paper_col]
    diff = mb - mw
    if judged not in spreads:
        spreads[judged] = pooled_spread(params, judged, root)
    noise, how = _noise_text(spreads[judged], nb, nw)
    status = judge(diff, noise, paper_diff if paper_diff else 1.0)
    relation = ">" if abs(diff) > NOISE_K * noise else "<="
    paper_text = f"{paper_diff:+.1f} {_name(paper_path)}" if paper_diff is not None else "n/a (sign: better > worse)"
    ob, ow = mean(b, beside)[0], mean(w, beside)[0]
    other = f"; {_name(beside)} beside: {ob - ow:+.1f}" if ob is not None and ow is not None else ""
    return status, (f"{status}: {b.label} vs {w.label}: ours {diff:+.1f} {_name(judged)} ({mb:.1f} vs {mw:.1f}), "
                    f"paper {paper_text}; |diff| {relation} {NOISE_K:g} x {how}{other}")


def claims(params: dict, root: str | Path = ".", paper: dict | None = None, tables: list[str] | None = None,
           iou: str | None = None) -> list[dict]:
    """Each claim of paper_numbers.yaml whose table is in `tables` (default: all) with a verdict (see the
    module docstring). `iou`: "segm" or "bbox" to judge every claim on it; None: by choose_iou's rule."""
    paper = paper if paper is not None else paper_numbers()
    built: dict[str, Table] = {}
    spreads: dict[str, dict] = {}
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
        if iou is None:
            claim_iou, basis = choose_iou(runs, root)
        else:
            claim_iou, basis = iou, f"{IOU_NAMES.get(iou, iou)} AP: chosen by the caller"
        results = [_pair_verdict(table, b, w, claim["metric"], claim.get("paper_metric"), claim_iou, params,
                                 root, spreads) for b, w in pairs]
        statuses = [s for s, _ in results]
        ran = [s for s in statuses if s != "not run"]
        counts = {v: ran.count(v) for v in VERDICTS if ran.count(v)}
        if not ran:
            verdict = "not run"
        elif len(counts) == 1:
            verdict = ran[0] + (f" ({len(ran)} of {len(statuses)} pairs run)" if len(ran) < len(statuses) else "")
        else:
            verdict = "mixed: " + ", ".join(f"{n} {v}" for v, n in counts.items())
            verdict += f" ({len(ran)} of {len(statuses)} pairs run)" if len(ran) < len(statuses) else ""
        out.append({"id": claim["id"], "text": claim["text"], "verdict": verdict, "iou": claim_iou,
                    "basis": basis, "statuses": statuses, "details": [d for _, d in results]})
    return out


def claims_markdown(found: list[dict]) -> str:
    if not found:
        return "No claim of the paper is checked on this table.\n"
    lines = [f"Rule: a pair is *reproduced* when our difference has the paper's sign and exceeds {NOISE_K:g} x its "
             f"noise, *opposite* when it exceeds it with the other sign, *within noise* otherwise; the noise of "
             f"a difference is the pooled seed sd of the multi-seed rows x sqrt(1/n_a + 1/n_b). Judged on mask AP "
             f"where the runs' mask AP >= {MASK_SHARE:g} x their box AP, else on box AP.", ""]
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


def k_sweep_claim(sweep: dict) -> str:
    """The paper's Table 3 claim: the baseline's rare AP gains most (relatively) from a larger K, and
    more than ROG's. Says, for each smaller K of our sweep against the largest, whether our runs show it.

    The measure is the share of each AP at the largest K that the smaller K misses (see _share_above):
    it orders classes as the relative gain does, and stays defined where the baseline's rare AP is 0
    at the smaller K (on LT-Glyphs it often is: its rare detections rank below the K-th of their image).
    """
    if len(sweep["rows"]) < 2 or any(not r["ours"] for r in sweep["rows"]) or len(sweep["k"]) < 2:
        return "Not checked: Table 3 needs both rows run with at least two K values."
    k_big = max(sweep["k"])
    base, rog = sweep["rows"][0], sweep["rows"][1]
    lines, held = [], []
    for k in sorted(sweep["k"])[:-1]:
        if k not in base["ours"] or k not in rog["ours"] or k_big not in base["ours"] or k_big not in rog["ours"]:
            continue
        b = [_share_above(lo, hi) for lo, hi in zip(base["ours"][k], base["ours"][k_big])]
        r = [_share_above(lo, hi) for lo, hi in zip(rog["ours"][k], rog["ours"][k_big])]
        if b[0] is None or r[0] is None:
            lines.append(f"K={k} -> {k_big}: no rare AP at K={k_big}, not checked")
            continue
        ok = all(b[0] > x + MIN_SHARE for x in b[1:] if x is not None) and b[0] > r[0] + MIN_SHARE
        held.append(ok)
        shares = ", ".join(f"{c} {x:.0f}%" for c, x in zip(sweep["columns"], b) if x is not None)
        lines.append(f"K={k} -> {k_big}: {'holds' if ok else 'does not hold'}; share of the AP at K={k_big} "
                     f"missed at K={k}: {base['label']} {shares}; {rog['label']} APr {r[0]:.0f}%")
    if not held:
        verdict = "not checked"
    elif all(held):
        verdict = "reproduced"
    elif any(held):
        verdict = "partly reproduced"
    else:
        verdict = "not reproduced"
    return (f"{verdict}: the baseline's rare AP depends most on K, more than ROG's "
            f"(paper, K 50 -> 100: RFS APr +71.8% vs ROG +17.5%).\n" + "\n".join(f"- {line}" for line in lines))


def balance_verdict(rows: list[dict], baseline: str, method: str, what: str) -> str:
    """Whether `method`'s rare/frequent balance is closer to 1 than `baseline`'s (the paper's claim)."""
    by = {r["key"]: r for r in rows}
    if baseline not in by or method not in by or by[baseline]["balance"] is None or by[method]["balance"] is None:
        return f"Not checked ({what}): a run is missing or has an empty rare/frequent group."
    b, m = by[baseline]["balance"], by[method]["balance"]
    closer = abs(math.log(m)) < abs(math.log(b)) if b > 0 and m > 0 else False
    return (f"{'reproduced' if closer else 'not reproduced'} ({what}): rare/frequent {m:.3g} with {method} vs "
            f"{b:.3g} with {baseline} (1 = balanced; the paper: GAP is more balanced).")


def convergence_verdict(rows: list[dict]) -> str:
    """One sentence per setting: converged, not converged (by how much), or which run is missing."""
    out = []
    for r in rows:
        if r["converged"] is None:
            why = f"no results for {', '.join(r['missing'])}" if r["missing"] else "a run has no box or mask AP"
            out.append(f"{r['setting']}: not checked, {why}.")
            continue
        gains = f"2x - 1x = {r['bbox']['diff']:+.1f} box AP, {r['segm']['diff']:+.1f} mask AP"
        out.append(f"{r['setting']}: {'converged' if r['converged'] else 'NOT converged'} ({gains}; "
                   f"criterion: at most +{r['tolerance']:g} each).")
    return "\n".join(out)

"""The overview page: the study as an abstract, from results/ (notebooks/overview.ipynb, stage overview).

    page = build(root=".")   # an Overview: Markdown blocks and figures, in reading order
    page                     # in a notebook: the blocks, the figures inline
    page.tables()            # the header cells of every Markdown table (tests: at most MAX_COLUMNS each)
    page.prose_words()       # words outside tables (tests: under MAX_WORDS)

In order: the question; the three-line verdict and the verdict counts per claim; the fidelity table
(fidelity.TABLE, written by the dataset page); rare AP per Table 1 row, box and mask, with
links to the run pages; the claims (table and dot plot); what GAP changes (its gain against schedule
length, per class, own-class ranks); the look-alike answer; where we disagree (opposite verdicts only);
the open questions (rog.report.questions' records in prose.yaml's words); provenance and cost. The
numbers come from rog.report.claims, questions and figures, the words from prose.yaml; nothing here names
an experiment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from rog.pipeline.registry import pair_runs, question, read_params, run_names, sections
from rog.report import (claims, fidelity, figures, lookalike, markdown, plots, provenance_table, questions, stats,
                        tables)
from rog.report.limits import learning_speed_markdown, regime_markdown
from rog.report.prose import say
from rog.report.regime import regime
from rog.report.results import aggregate, load_metrics, paper_numbers, value

MAX_COLUMNS = markdown.MAX_COLUMNS
MAX_WORDS = 1200  # words of prose on the page, tables and code left out
ONE_SEED = "†"  # marks a verdict resting on one seed per arm in the verdict lines (the claims table spells it out)
STATUS_LINES = (("reproduced", "Reproduced"), ("opposite", "Opposite"), ("within noise", "Unresolved (within noise)"))


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
        return markdown.table_heads(self.markdown())

    def prose_words(self) -> int:
        """Words of the page's Markdown outside tables."""
        return markdown.prose_words(self.markdown())

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


def _run_links(runs: list[str]) -> str:
    return ", ".join(f"[{r}](run/{r}.ipynb)" for r in runs)


# ---- the claims: rows, the three-line verdict, the counts ----------------------------------------------
def claim_rows(found: list[dict], sweep_claim: dict | None) -> list[dict]:
    """One entry per judged pair (claims with several pairs give several), Table 3's as one more: {claim (text
    on the claim's first pair), short, id, table, keys, iou, pair, metric, paper_metric, ours, paper,
    threshold, status, one_seed (both arms one seed)}."""
    out = []
    for c in found:
        for i, p in enumerate(c["pairs"]):
            out.append({"claim": c["text"] if i == 0 else "", "short": c.get("short") or c["text"], "id": c["id"],
                        "table": c["table"], "keys": p["keys"], "iou": p.get("iou", c["iou"]),
                        "pair": f"{p['better']} vs {p['worse']}", "better": p["better"], "worse": p["worse"],
                        "metric": p["metric"], "paper_metric": p["paper_metric"], "ours": p["ours"],
                        "paper": p["paper"], "threshold": p["threshold"], "status": p["status"],
                        "one_seed": tuple(p.get("n") or ()) == (1, 1), "beside": p.get("beside")})
    if sweep_claim is not None and sweep_claim["status"] != "not checked":
        iou = claims.IOU_NAMES[sweep_claim["iou"]]
        out.append({"claim": "The baseline's rare AP depends more on K than ROG's (Table 3)", "short":
                    "the baseline's rare AP depends more on K", "id": "k_sweep", "table": "table3", "keys": None,
                    "base": sweep_claim["base"], "rog": sweep_claim["rog"], "better": "RFS", "worse": "ROG",
                    "pair": "RFS's loss minus ROG's", "one_seed": False,
                    "metric": f"pp of {iou} APr lost at K {sweep_claim['k']} (of {sweep_claim['k_big']:,})",
                    "paper_metric": f"pp of APr lost at K 50 (of 100; box or mask unstated)",
                    "ours": sweep_claim["ours"], "paper": sweep_claim["paper"], "threshold": sweep_claim["threshold"],
                    "status": sweep_claim["status"], "beside": None})
    return out


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


def verdict_lines(rows: list[dict]) -> list[str]:
    """The three-line verdict: per status, the claims whose pairs reached it (a claim of several pairs names
    the pairs' better rows), one-seed verdicts marked."""
    judged = [r for r in rows if r["status"] in stats.VERDICTS]
    whole = {r["short"]: sum(x["short"] == r["short"] for x in judged) for r in judged}   # pairs per claim
    # a claim whose pairs share their better row (GAP alone vs AP loss, vs RS loss) names each pair's worse row,
    # decided over all its pairs: split across statuses, each line would otherwise name the shared row alone
    shared = {short: len({r["better"] for r in judged if r["short"] == short}) < n for short, n in whole.items()}
    lines = []
    for status, word in STATUS_LINES:
        mine = [r for r in judged if r["status"] == status]
        if not mine:
            continue
        by_claim: dict[str, list[dict]] = {}
        for r in mine:
            by_claim.setdefault(r["short"], []).append(r)
        named = []
        for short, pairs in by_claim.items():
            marks = [(f"vs {p['worse']}" if shared[short] else p["better"].removesuffix(" + GAP")) + (ONE_SEED if p["one_seed"] else "")
                     for p in pairs]
            named.append(short if whole[short] == 1 and not pairs[0]["one_seed"] else f"{short} ({'; '.join(marks)})")
        lines.append(say("overview.verdict_line", status=word, pairs=len(mine), total=len(judged),
                         claims="; ".join(named)))
    return lines


def counts_markdown(rows: list[dict]) -> str:
    """Verdicts per claim: pairs run, reproduced, within noise, opposite."""
    order: dict[str, list[dict]] = {}
    for r in rows:
        order.setdefault(r["short"], []).append(r)
    body = []
    for short, pairs in order.items():
        ran = [p for p in pairs if p["status"] in stats.VERDICTS]
        body.append([short, pairs[0]["table"], f"{len(ran)} of {len(pairs)}",
                     *(str(sum(p["status"] == s for p in ran) or "-") for s in stats.VERDICTS)])
    total = [r for r in rows if r["status"] in stats.VERDICTS]
    body.append(["**all**", "", f"{len(total)} of {len(rows)}",
                 *(f"**{sum(p['status'] == s for p in total)}**" for s in stats.VERDICTS)])
    return _table(["claim", "paper", "pairs run", *stats.VERDICTS], body)


def claims_markdown(rows: list[dict]) -> str:
    def apart(r: dict) -> int:  # decimals at which ours and the threshold print apart (borderline verdicts)
        if r["ours"] is None or r["threshold"] is None:
            return 1
        return markdown.digits_apart(r["ours"], r["threshold"])

    head = ["claim", "pair (better vs worse)", "ours", "ours, the other metric", "paper", f"{stats.NOISE_K:g} x noise",
            "verdict"]
    body = [[r["claim"], r["pair"], f"{_f(r['ours'], apart(r), signed=True)} {r['metric']}",
             f"{_f(r['beside'][1], signed=True)} {r['beside'][0]}" if r.get("beside") else "-",
             f"{_f(r['paper'], signed=True)} {r['paper_metric']}" if r["paper"] is not None else "-",
             _f(r["threshold"], apart(r)), f"**{r['status']}**" + (" *(1 seed)*" if r["one_seed"] else "")]
            for r in rows]
    return "## The claims, pair by pair\n\n" + say("overview.claims_intro", share=f"{claims.MASK_SHARE:g}") \
        + "\n\n" + _table(head, body)


# ---- rare AP per Table 1 row ---------------------------------------------------------------------------
def rare_ap_rows(params: dict, root: str | Path, paper: dict) -> list[dict]:
    """Per Table 1 row with results: {label, gap, runs, paper (mask APr), bbox and segm: {seeds, mean, sd} or
    None}."""
    table = tables.build(params, "table1", root, paper)
    paper_col = table.metrics.index("segm.APr")
    out = []
    for row in table.rows:
        sides = {}
        for iou in ("bbox", "segm"):
            seeds = [v for v in (value(load_metrics(r, root), f"{iou}.APr") for r in row.found) if v is not None]
            if seeds:
                mean, sd, _ = aggregate(seeds)
                sides[iou] = {"seeds": seeds, "mean": mean, "sd": sd}
        if sides.get("bbox"):
            out.append({"label": row.label, "gap": row.label.endswith("+ GAP"), "runs": list(row.found),
                        "paper": row.paper[paper_col], "bbox": sides["bbox"], "segm": sides.get("segm")})
    return out


def rare_ap_counts(rows: list[dict], params: dict, root: str | Path) -> dict:
    """How many objectives gain rare AP with GAP: ours (seed means on the rare group's judged metric), beyond
    noise, and the paper's; only objectives with both their row and their "+ GAP" row count."""
    by_label = {r["label"]: r for r in rows}
    pairs = [(r, by_label[r["label"] + " + GAP"]) for r in rows if not r["gap"] and r["label"] + " + GAP" in by_label]
    iou = claims.choose_iou([x for b, g in pairs for x in b["runs"] + g["runs"]], root, "APr")[0] if pairs else "bbox"
    iou = iou if all(b.get(iou) and g.get(iou) for b, g in pairs) else "bbox"
    sd = claims.seed_sd(params, f"{iou}.APr", root)
    found = [stats.verdict(g[iou]["mean"] - b[iou]["mean"], sd, (len(b[iou]["seeds"]), len(g[iou]["seeds"])))
             for b, g in pairs]
    with_paper = [(b, g) for b, g in pairs if b["paper"] is not None and g["paper"] is not None]
    return {"pairs": len(pairs), "higher": sum(v.difference > 0 for v in found),
            "beyond": sum(v.status == "reproduced" for v in found), "iou": iou,
            "paper_pairs": len(with_paper), "paper_higher": sum(g["paper"] > b["paper"] for b, g in with_paper)}


def rare_ap_markdown(rows: list[dict]) -> str:
    body = [[r["label"], str(len(r["bbox"]["seeds"])), _f(r["bbox"]["mean"]),
             _f(r["segm"]["mean"]) if r.get("segm") else "-", _f(r["paper"]), _run_links(r["runs"])] for r in rows]
    return _table(["Table 1 row", "seeds", "box APr", "mask APr", "paper mask APr", "runs"], body)


# ---- where we disagree ---------------------------------------------------------------------------------
def _weaker_but_rarer(r: dict, params: dict, root: str | Path) -> dict | None:
    """For a rare-AP pair the better row lost: {alone, other, alone_share, other_share, worse, verdict} when
    the better row's AP is below the worse row's beyond noise while a larger share of it is rare AP (APr / AP):
    its rare-class weighting works and the detector under it lags. None otherwise."""
    table = tables.build(params, r["table"], root)
    rows = [table.row(k) for k in r["keys"]]
    ap, apr = ([aggregate([value(load_metrics(x, root), f"{r['iou']}.{m}") for x in row.found]) for row in rows]
               for m in ("AP", "APr"))
    if not all(a[0] for a in ap) or any(a[0] is None for a in apr):   # no AP (or 0): no share
        return None
    found = stats.verdict(ap[0][0] - ap[1][0], claims.seed_sd(params, f"{r['iou']}.AP", root), (ap[0][2], ap[1][2]))
    shares = [apr[i][0] / ap[i][0] for i in (0, 1)]
    if found.status != "opposite" or shares[0] <= shares[1]:
        return None
    return {"alone": ap[0][0], "other": ap[1][0], "alone_share": shares[0], "other_share": shares[1],
            "worse": r["worse"], "verdict": found}


def _why(r: dict, params: dict, root: str | Path) -> str:
    """An explanation of an opposite verdict backed by runs, or the template saying none is."""
    metric = claims.metric_name(f"{r['iou']}.AP")
    if r["id"] == "ranking_losses_lag_on_rare":
        runs = question(params, "gap_alone").get("runs") or {}
        alone, ap_loss = (value(load_metrics(runs[k], root), f"{r['iou']}.AP") if runs.get(k) else None
                          for k in ("g1", "ap"))
        if alone is not None and ap_loss is not None and alone < claims.MASK_SHARE * ap_loss:
            return say("overview.weak_alone", alone=alone, ap_loss=ap_loss, metric=metric)
        weaker = _weaker_but_rarer(r, params, root)
        if weaker:
            return say("overview.weaker_overall", metric=metric, **weaker)
    if r["id"] == "gap_helps_every_objective" and r["keys"]:
        table = tables.build(params, r["table"], root)
        sampler = r["keys"][1].split("/")[0]
        ce_key = f"{sampler}/{question(params, 'baseline').get('objective')}"
        if ce_key in {x.key for x in table.rows}:
            base = aggregate([value(load_metrics(x, root), f"{r['iou']}.AP") for x in table.row(r["keys"][1]).found])[0]
            ce = aggregate([value(load_metrics(x, root), f"{r['iou']}.AP") for x in table.row(ce_key).found])[0]
            if base is not None and ce is not None and base >= ce:
                return say("overview.more_room", base=base, ce=ce, metric=metric)
    return say("overview.unexplained")


def disagreements_markdown(rows: list[dict], params: dict, root: str | Path) -> str:
    """The opposite verdicts only, each with what explains it."""
    lines = [say("overview.disagreement", pair=r["pair"], metric=r["metric"], ours=r["ours"],
                 paper=_f(r["paper"], signed=True), seeds=", one seed per arm" if r["one_seed"] else "",
                 why=_why(r, params, root))
             for r in rows if r["status"] == "opposite"]
    return "## Where we disagree\n\n" + ("\n".join(lines) if lines else say("overview.no_disagreement"))


# ---- the open questions --------------------------------------------------------------------------------
def _gap_alone_text(found: questions.Answer) -> str:
    v = found.values
    if found.answer == "not_run":
        return say("gap_alone.not_run", **v)
    parts = [say("gap_alone.numbers", **v)] if None not in (v["apf_g1"], v["apf_g0"], v["omega_f"]) else []
    if found.answer == "trades":
        at_1x = found.verdicts["at_1x"]
        parts.append(say("gap_alone.trades", **v, at_1x=at_1x, start_words=say(f"gap_alone.start_{v['start']}"),
                         level=say("gap_alone.level_" + ("above" if at_1x.status == "opposite" else "level")),
                         conclusion=say("gap_alone.trades_" + ("cost" if found.verdicts["apf"].status == "reproduced"
                                                               else "free"))))
        if "g1_2x" in v:
            parts.append(say("gap_alone.trades_2x", **v))
        return " ".join(parts)
    parts.append(say("gap_alone.contradiction" + ("_pretrained" if v["start"] == "pretrained" else ""), **v))
    parts.append(say(f"gap_alone.{found.answer}", **v, **found.verdicts))
    return " ".join(parts)


def _eqlv2_text(found: questions.Answer) -> str:
    v, verdicts = found.values, found.verdicts
    if found.answer == "not_run":
        return say("eqlv2_below_ce.not_run", **v)
    parts = [say("eqlv2_below_ce.numbers", k=f"{stats.NOISE_K:g}", **v, **verdicts)]
    if v["mechanism"]:
        parts.append(say("eqlv2_below_ce.mechanism_" + ("works" if v["mechanism"]["towards"] else "fails"),
                         **v, **verdicts) + " " + say("eqlv2_below_ce.rare_" + (
                             "follows" if verdicts["rare"].status == "reproduced" else "does_not_follow"),
                             **v, **verdicts))
        if "on_top" in verdicts:
            parts.append(say("eqlv2_below_ce.on_top", **v, **verdicts))
    place = "below" if verdicts["at_1x"].status == "opposite" else "level with"
    parts.append(say(f"eqlv2_below_ce.{found.answer}", place=place, **v, **verdicts))
    return " ".join(parts)


def _gain_text(found: questions.Answer) -> str:
    v, verdicts = found.values, found.verdicts
    if found.answer == "not_run":
        return say("gain.not_run", **v)
    parts = [say("gain.numbers", **v, **verdicts)]
    if "sgd_2x" in verdicts:
        seeds = ("one seed each" if v["n_ce_long"] == v["n_gap_long"] == 1
                 else f"{v['n_ce_long']} and {v['n_gap_long']} seeds")
        parts.append(say(f"gain.long.{questions.schedule_state(verdicts)}", seeds_long=seeds, **v, **verdicts))
    if "adamw" in verdicts:
        parts.append(say(f"gain.adamw.{questions.adamw_state(verdicts)}", **v, **verdicts))
    parts.append(say(f"gain.{found.answer}", **v, **verdicts))
    return " ".join(parts)


def _compare_text(found: questions.Answer) -> str:
    return say(f"{found.question}.{found.answer}", **found.values, **found.verdicts)


def open_questions_markdown(params: dict, root: str | Path, paper: dict) -> str:
    """Each open question answered from its registry runs (rog.report.questions), in prose.yaml's words."""
    answers = ((questions.gap_alone(params, root, paper), _gap_alone_text),
               (questions.eqlv2_below_ce(params, root, paper), _eqlv2_text),
               (questions.gain(params, root), _gain_text))
    def title(found: questions.Answer) -> str:
        words = say(found.question + ".title")
        return words if words[-1] in ".?!" else words + "."

    answers += tuple((questions.compare(params, root, name), _compare_text) for name in questions.declared(params))
    return "## Open questions\n\n" + "\n\n".join(f"**{title(found)}** {text(found)}" for found, text in answers)


# ---- what GAP changes, the look-alike answer -----------------------------------------------------------
def what_gap_changes(params: dict, root: str | Path) -> list:
    """GAP's rare-AP gain against schedule length (box and mask), per class against training images, and where
    rare objects' own class ranks in their image: the intro, then the figures."""
    blocks: list = ["## What GAP changes\n\n" + say("overview.what_gap_changes", k=f"{stats.NOISE_K:g}")]
    gains = [g for g in figures.gain_by_length(params, root) if g["verdict"] is not None]
    if gains:
        blocks.append(plots.plot_gain_by_length(gains))
    runs = [r for runs in pair_runs(params).values() for r in runs]
    iou = claims.choose_iou(runs, root)[0]
    per_class = figures.per_class_gain(params, root, iou) if runs else []
    if per_class:
        blocks.append(plots.plot_per_class_gain(per_class, iou))
    ranks = figures.own_rank_histogram(params, root)
    if ranks:
        blocks.append(plots.plot_own_rank_histogram(ranks, figures.RANK_BINS))
    else:
        blocks[0] += " " + say("overview.no_ranks")
    return blocks


def lookalike_markdown(params: dict, root: str | Path) -> str | None:
    """The look-alike answer in one paragraph; None while the pair has no lookalike.json."""
    found = lookalike.answer(root, params)
    if found is None:
        return None
    first, second = found["labels"]
    return say("overview.lookalike", answer=say(f"overview.lookalike_{found['answer']}"), first=first,
               second=second, a=found["shares"][first], b=found["shares"][second])


# ---- provenance and cost -------------------------------------------------------------------------------
def footer_markdown(params: dict, root: str | Path, runs: list[str], found_regime: dict) -> str:
    recorded = [m for m in (load_metrics(r, root) for r in runs) if m]
    seconds = sum(float((m.get("run") or {}).get(k) or 0) for m in recorded
                  for k in ("train_seconds", "eval_seconds", "curve_seconds"))
    commits = provenance_table.training_code(runs, root)
    spread = claims.pooled_spread(params, "bbox.AP", root)
    seeds = (say("overview.seeds", rows=spread["rows"], seeds="/".join(map(str, sorted(set(spread["seeds"])))))
             if spread["sd"] is not None else say("overview.one_seed"))
    return "---\n\n" + say("overview.footer", regime=regime_markdown(found_regime, "on this page"),
                           runs=len(recorded), core_hours=seconds / 3600, commits=commits or "unrecorded",
                           speed=learning_speed_markdown(params, root, runs, brief=True), seeds=seeds)


def fidelity_markdown(root: str | Path) -> str | None:
    table = fidelity.read_table(root)
    return None if table is None else \
        "## Does LT-Glyphs pose LVIS's problem?\n\n" + say("overview.fidelity") + "\n\n" + table.strip()


# ---- the page ------------------------------------------------------------------------------------------
def build(root: str | Path = ".", params: dict | None = None, paper: dict | None = None) -> Overview:
    """The overview page from the results below `root` (params: root/params.yaml)."""
    params = params if params is not None else read_params(Path(root) / "params.yaml")
    paper = paper if paper is not None else paper_numbers()
    runs = [r for r in run_names(params) if load_metrics(r, root) is not None]
    found_regime = regime(params, root)
    rows = judged_claims(params, root, paper)
    page = Overview()
    page.blocks.append(say("overview.question") + "\n\n"
                       + "\n".join(f"- {line}" for line in verdict_lines(rows)))
    other = len(found_regime["runs"]) - len(found_regime["same"])
    older = " " + say("overview.older_regime", older=other, runs=len(found_regime["runs"])) if other else ""
    page.blocks.append(say("overview.counts_intro", k=f"{stats.NOISE_K:g}") + older + "\n\n" + counts_markdown(rows))
    fidelity = fidelity_markdown(root)
    if fidelity:
        page.blocks.append(fidelity)
    rare = rare_ap_rows(params, root, paper) if "table1" in sections(params) else []
    if rare:
        page.blocks.append("## Rare AP per model\n\n" + say("overview.headline", **rare_ap_counts(rare, params, root))
                           + "\n\n" + rare_ap_markdown(rare))
        page.blocks.append(plots.plot_rare_ap(rare))
    page.blocks.append(claims_markdown(rows))
    if any(r["ours"] is not None for r in rows):
        page.blocks.append(plots.plot_claims(rows))
    page.blocks += what_gap_changes(params, root)
    found = lookalike_markdown(params, root)
    if found:
        page.blocks.append(found)
    page.blocks.append(disagreements_markdown(rows, params, root))
    page.blocks.append(open_questions_markdown(params, root, paper))
    page.blocks.append(footer_markdown(params, root, runs, found_regime))
    return page

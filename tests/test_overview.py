"""rog.report.overview and rog.report.questions: the overview page from the committed results/ (narrow
tables, the abstract's parts, every verdict one of the noise rule's three) and, on fake results, the
records its answers rest on (the regime, the open questions, the claims' verdict lines), asserted as
records: answer keys, verdict statuses and numbers, not wording."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rog.config import resolve_run
from rog.engine.rundir import params_hash
from rog.pipeline import freshness, registry
from rog.report import claims, limits, markdown, overview, prose, questions, regime, stats

ROOT = Path(__file__).resolve().parents[1]


def fake(ap: float, apr: float = 0.05, apf: float | None = None, run: dict | None = None) -> dict:
    m = {"AP": ap, "APr": apr, "APc": ap, "APf": ap if apf is None else apf}
    return {"bbox": {"metrics": m}, "segm": {"metrics": dict(m)}, "run": {"profile": "default", **(run or {})}}


def write(root: Path, name: str, metrics: dict) -> None:
    path = registry.metrics_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))


def write_headline_rows(root: Path, ce_apr=(0.03,) * 3, gap_apr=(0.08,) * 3, ce_ap=0.27, gap_ap=0.28) -> None:
    """Table 1's sigmoid CE and CE + GAP rows, 3 seeds each with these APr (default identical: APr 3.0 and 8.0,
    AP 27.0 and 28.0)."""
    for names, aprs, ap in ((("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"), ce_apr, ce_ap),
                            (("sigmoid_ce_gap", "sigmoid_ce_gap_seed1", "sigmoid_ce_gap_seed2"), gap_apr, gap_ap)):
        for name, apr in zip(names, aprs):
            write(root, name, fake(ap, apr=apr))


def write_fresh(root: Path, *runs: str) -> None:
    """results/freshness.json saying `runs` were made with the params params.yaml gives now."""
    from rog.paths import FRESHNESS_FILE

    path = Path(root) / FRESHNESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({run: {"state": "same"} for run in runs}))


@pytest.fixture(scope="module")
def committed():
    return overview.build(ROOT)


def test_overview_of_the_committed_results_is_an_abstract_under_the_caps(committed):
    assert len(committed.figures) >= 4            # rare AP, claims, gain by length, per class (+ ranks)
    widths = [len(head) for head in committed.tables()]
    assert widths and max(widths) <= overview.MAX_COLUMNS
    assert committed.prose_words() < overview.MAX_WORDS
    text = committed.markdown()
    first = text.split("\n\n")
    assert first[0].startswith("**The question.**")             # the question, then the three-line verdict
    assert [line.split("**")[1] for line in first[1].splitlines()] == [
        word for status, word in overview.STATUS_LINES
        if any(r["status"] == status for r in overview.judged_claims(registry.read_params(ROOT / "params.yaml"),
                                                                     ROOT, claims.paper_numbers()))]
    assert "| claim | paper | pairs run | reproduced | within noise | opposite |" in text   # the verdict counts
    # the counts' caveat counts the runs not made with the current params, and is absent when there are none
    found = regime.regime(registry.read_params(ROOT / "params.yaml"), ROOT)
    other = len(found["runs"]) - len(found["same"])
    caveat = f"**{other} of these {len(found['runs'])} runs come from an older regime"
    assert (caveat in text) if other else ("come from an older regime" not in text)


def test_every_claim_row_has_a_noise_rule_verdict_and_both_deltas(params, paper):
    rows = overview.claim_rows(claims.claims(params, ROOT, paper), None)
    assert rows and all(r["status"] in claims.VERDICTS for r in rows)
    assert all(r["ours"] is not None and r["threshold"] > 0 for r in rows)
    table = overview.claims_markdown(rows)
    # one table line per judged pair, each with its verdict in bold
    assert sum(line.startswith("| ") and "**" in line for line in table.splitlines()) == len(rows)


def test_verdict_lines_and_counts_follow_the_pairs_and_mark_one_seed_verdicts(tmp_path, params, paper):
    """Sigmoid CE + GAP beyond noise (3 seeds a side); softmax CE + GAP below its baseline by 5 AP with one seed
    each (noise floor 0.1: opposite)."""
    write_headline_rows(tmp_path, ce_ap=0.27, gap_ap=0.30)
    write(tmp_path, "softmax_ce", fake(0.30))
    write(tmp_path, "softmax_ce_gap", fake(0.25))
    rows = [r for r in overview.judged_claims(params, tmp_path, paper) if r["status"] in claims.VERDICTS]
    by_pair = {r["pair"]: r for r in rows}
    down = by_pair["Random, Softmax CE + GAP vs Random, Softmax CE"]
    assert (down["status"], down["one_seed"], round(down["ours"], 6)) == ("opposite", True, -5.0)
    up = by_pair["Random, Sigmoid CE + GAP vs Random, Sigmoid CE"]
    assert up["status"] == "reproduced" and not up["one_seed"]
    lines = overview.verdict_lines(rows)
    assert [line.split("**")[1] for line in lines] == ["Reproduced", "Opposite"]
    assert f"Random, Softmax CE{overview.ONE_SEED}" in lines[1] and "Softmax" not in lines[0]
    counts = overview.counts_markdown(rows).splitlines()
    assert counts[-1].split("|")[4:7] == [" **" + str(sum(r["status"] == s for r in rows)) + "** " for s in claims.VERDICTS]


def test_a_claim_whose_pairs_share_their_better_row_names_each_worse_row_on_every_verdict_line(tmp_path, params,
                                                                                            paper):
    """GAP alone below AP loss (opposite) and level with RS loss (within noise): the two lines name the rows GAP
    alone was compared with, not GAP alone twice."""
    write_headline_rows(tmp_path)
    for name, apr in (("gap_only", 0.05), ("ap_loss_only", 0.10), ("rs_loss_only", 0.05)):
        write(tmp_path, name, fake(0.3, apr=apr))
    rows = [r for r in overview.judged_claims(params, tmp_path, paper)
            if r["status"] in claims.VERDICTS and r["table"] == "table2"]
    assert sorted(r["status"] for r in rows) == ["opposite", "within noise"]
    lines = {line.split("**")[1]: line for line in overview.verdict_lines(rows)}
    assert f"vs N/A, AP loss{overview.ONE_SEED}" in lines["Opposite"]
    assert f"vs N/A, RS loss{overview.ONE_SEED}" in lines["Unresolved (within noise)"]
    assert "GAP loss" not in lines["Opposite"].split("(", 1)[1]


def test_gap_alone_below_ap_loss_on_rare_ap_is_explained_by_a_weaker_detector_with_a_larger_rare_share(
        tmp_path, params, paper):
    """GAP alone AP 30, APr 20 (share 0.67); AP loss alone AP 50, APr 28 (share 0.56): opposite on APr, and the
    why names the weaker detector (beyond noise) and the larger rare share. With AP loss's share the larger, the
    pair stays unexplained."""
    write_headline_rows(tmp_path)
    write(tmp_path, "gap_only", fake(0.30, apr=0.20))
    write(tmp_path, "ap_loss_only", fake(0.50, apr=0.28))
    rows = overview.judged_claims(params, tmp_path, paper)
    pair = next(r for r in rows if r["pair"] == "N/A, GAP loss vs N/A, AP loss")
    assert pair["status"] == "opposite"
    why = overview._why(pair, params, tmp_path)
    assert why.startswith("GAP alone trains a weaker detector here (30.0 vs 50.0 mask AP for N/A, AP loss")
    assert "(APr / AP 0.67 vs 0.56)" in why
    write(tmp_path, "ap_loss_only", fake(0.50, apr=0.40))          # share 0.80: AP loss keeps more on rare
    pair = next(r for r in overview.judged_claims(params, tmp_path, paper) if r["pair"] == "N/A, GAP loss vs N/A, AP loss")
    assert overview._why(pair, params, tmp_path) == prose.say("overview.unexplained")


def test_the_headline_counts_the_objectives_whose_rare_ap_gap_raises(tmp_path, params, paper):
    """Sigmoid CE pair: GAP up; softmax CE pair: GAP down; NorCal: no + GAP run. The paper: up in both pairs."""
    for name, apr in (("sigmoid_ce", 0.03), ("sigmoid_ce_gap", 0.08), ("softmax_ce", 0.05), ("softmax_ce_gap", 0.04),
                      ("softmax_ce_norcal", 0.05)):
        write(tmp_path, name, fake(0.3, apr=apr))
    rows = overview.rare_ap_rows(params, tmp_path, paper)
    assert [r["label"] for r in rows][:2] == ["Random, Sigmoid CE", "Random, Sigmoid CE + GAP"]
    assert rows[0]["bbox"]["seeds"] == [3.0] and rows[0]["segm"]["mean"] == 3.0 and rows[0]["paper"] == 0.8
    counts = overview.rare_ap_counts(rows, params, tmp_path)
    assert counts == {"pairs": 2, "higher": 1, "beyond": 1, "iou": "segm", "paper_pairs": 2, "paper_higher": 2}
    assert "[sigmoid_ce](run/sigmoid_ce.ipynb)" in overview.rare_ap_markdown(rows)


def test_tables_wider_than_ten_columns_are_split_under_the_cap():
    text = overview._table([str(i) for i in range(12)], [[f"r{i}" for i in range(12)]])
    assert markdown.widths(text) == [10, 3]
    assert text.split("\n\n")[1].startswith("| 0 | 10 | 11 |\n|---|---|---|\n| r0 | r10 | r11 |")


def test_prose_words_leave_tables_and_images_out():
    text = "Two words.\n\n| a | b |\n|---|---|\n| c d e | f |\n\n![x](y.png)\n- three more words"
    assert markdown.prose_words(text) == 5
    assert markdown.table_heads(text) == [["a", "b"]]


def test_a_template_fills_signed_numbers_without_minus_zero_and_names_a_missing_field():
    assert prose._Formatter().format("{x:+.1f} {y:+.2f} {z:.1f}", x=-0.04, y=1.234, z=2.0) == "+0.0 +1.23 2.0"
    # unsigned too: Table 3's "ROG -0 %" (a share of -0.3 % at {rog:.0f}) reads "ROG 0 %"
    assert prose._Formatter().format("{a:.0f} % {b:.1f} {c:.0f}", a=-0.3, b=-0.04, c=-0.6) == "0 % 0.0 -1"
    borderline = stats.verdict(2.71, 0.955, (1, 1))        # threshold 2 x 0.955 x sqrt(2) = 2.70
    assert prose._Formatter().format("{v:+apart}, real above {v:apart}", v=borderline) == "+2.71, real above 2.70"
    clear = stats.verdict(5.0, 0.955, (1, 1))
    assert prose._Formatter().format("{v:+apart} / {v:apart}", v=clear) == "+5.0 / 2.7"
    with pytest.raises(KeyError, match="gap_alone.starvation"):
        prose.say("gap_alone.starvation", g1_2x=1.0)
    with pytest.raises(KeyError, match="no template 'gap_alone.nothing'"):
        prose.template("gap_alone.nothing")


def test_freshness_compares_each_run_with_the_params_it_would_train_now_and_pages_read_it(tmp_path, params):
    # the scratch profile: no pretrained detector whose digest the hash would read
    now = resolve_run(params, "scratch", "sigmoid_ce", ["dataset.root=out/pipeline/scratch/dataset"])
    scratch = {"run": {"profile": "scratch"}}
    write(tmp_path, "sigmoid_ce", {**fake(0.3), **scratch, "checkpoint": {"params_hash": params_hash(now)}})
    write(tmp_path, "sigmoid_ce_gap", {**fake(0.3), **scratch, "checkpoint": {"params_hash": "0123456789abcdef"}})
    write(tmp_path, "softmax_ce", {**fake(0.3), **scratch})  # no hash recorded
    # the default profile starts from a pretrained detector this folder lacks: its hash cannot be made
    write(tmp_path, "eqlv2", {**fake(0.3), "run": {"profile": "default"}, "checkpoint": {"params_hash": "0" * 16}})
    # before the freshness stage has run, nothing is known
    assert set(regime.regime(params, tmp_path)["unknown"]) == {"sigmoid_ce", "sigmoid_ce_gap", "softmax_ce", "eqlv2"}
    recorded = json.loads(freshness.write(params, tmp_path).read_text())
    assert recorded["sigmoid_ce"] == {"state": "same", "recorded": params_hash(now), "now": params_hash(now),
                                      "why": None}
    assert recorded["sigmoid_ce_gap"]["state"] == "other"
    assert recorded["sigmoid_ce_gap"]["now"] == params_hash(
        resolve_run(params, "scratch", "sigmoid_ce_gap", ["dataset.root=out/pipeline/scratch/dataset"]))
    assert recorded["softmax_ce"] == {"state": "unknown", "recorded": None, "now": None,
                                      "why": "no params hash recorded"}
    assert recorded["eqlv2"]["state"] == "unknown" and "pretrained detector" in recorded["eqlv2"]["why"]
    found = regime.regime(params, tmp_path)  # read from results/freshness.json: nothing resolved
    assert (found["same"], found["other"]) == (["sigmoid_ce"], ["sigmoid_ce_gap"])
    assert sorted(found["unknown"]) == ["eqlv2", "softmax_ce"]
    write(tmp_path, "seesaw", {**fake(0.3), **scratch})  # results newer than the freshness record: unknown
    assert "seesaw" in regime.regime(params, tmp_path)["unknown"]
    only = regime.regime(params, tmp_path, ["sigmoid_ce", "sigmoid_ce_gap", "softmax_ce"])
    assert ("results/ mixes two.** 1 of 3 runs in results/ were made with the parameters params.yaml gives now, 1 "
            "with others, 1 cannot be checked (no params hash recorded, or the pretrained detector params.yaml's "
            "profile starts from is not on this machine): sigmoid_ce_gap, softmax_ce.") in limits.regime_markdown(only)
    older = {**only, "same": [], "other": only["other"] + only["same"]}
    assert "results/ holds an older one.** 2 of 3 runs" in limits.regime_markdown(older)
    assert "All 1 runs in results/ were made with the parameters" in limits.regime_markdown(
        regime.regime(params, tmp_path, ["sigmoid_ce"]))



@pytest.mark.parametrize("at_2x, answer", [((21.8, 22.0), "schedule"),        # gamma 1 catches up
                                           ((30.0, 22.0), "schedule_ahead"),  # overtakes
                                           ((12.0, 30.0), "both"),            # 20 -> 18: shrinks, but stays
                                           ((3.0, 30.0), "starvation")])      # 20 -> 27: does not shrink
def test_gap_alone_answer_follows_the_2x_runs(tmp_path, params, paper, at_2x, answer):
    """No multi-seed row: sd floor 0.1, so one-seed differences are within noise below 0.28, a change of
    them is real above 0.4."""
    for name, ap in {"gap_only": 2.0, "gap_only_gamma0": 22.0, "ap_loss_only": 32.0}.items():
        write(tmp_path, name, fake(ap / 100))
    found = questions.gap_alone(params, tmp_path, paper)
    assert found.answer == "pending" and (found.values["g1"], found.values["g0"], found.values["ap_loss"]) == (2.0, 22.0, 32.0)
    assert found.values["paper_apf"] == 25.2            # the paper's GAP-alone APf: Eq. 9's contradiction
    assert found.verdicts["at_1x"].status == "reproduced" and found.verdicts["at_1x"].difference == pytest.approx(20.0)
    assert found.values["start"] == "unknown"           # no freshness record: the start is not trusted
    write_fresh(tmp_path, "gap_only")
    write(tmp_path, "gap_only_2x", fake(at_2x[0] / 100))
    write(tmp_path, "gap_only_gamma0_2x", fake(at_2x[1] / 100))
    found = questions.gap_alone(params, tmp_path, paper)
    assert found.answer == answer
    assert found.verdicts["at_2x"].difference == pytest.approx(at_2x[1] - at_2x[0])
    assert found.verdicts["change"].threshold == pytest.approx(2 * 0.1 * 2)       # sqrt(1 + 1 + 1 + 1) = 2
    assert "**" in overview._gap_alone_text(found)       # its template fills from the record
    assert prose.say(f"gap_alone.{answer}", **found.values, **found.verdicts) in overview._gap_alone_text(found)
    # the default profile starts pretrained, as the paper's run does: the start cannot explain the collapse
    assert found.values["start"] == "pretrained"
    assert prose.say("gap_alone.contradiction_pretrained", **found.values) in overview._gap_alone_text(found)


@pytest.mark.parametrize("profile, start", [("default", "pretrained"), ("scratch", "scratch")])
def test_gap_alone_level_with_or_above_gamma0_is_a_trade_not_starvation(tmp_path, params, paper, profile, start):
    """Gamma 1 above gamma 0 at 1x (one seed each, sd floor 0.1: 2 x noise 0.28): omega trades APf for APr;
    no 2x runs are needed, and the start (the run's profile's model.weights) is named."""
    write(tmp_path, "gap_only", fake(0.30, apr=0.22, apf=0.36, run={"profile": profile}))
    write(tmp_path, "gap_only_gamma0", fake(0.24, apr=0.02, apf=0.51, run={"profile": profile}))
    write_fresh(tmp_path, "gap_only")
    found = questions.gap_alone(params, tmp_path, paper)
    assert found.answer == "trades" and found.values["start"] == start
    assert found.verdicts["at_1x"].difference == pytest.approx(-6.0) and found.verdicts["at_1x"].real
    assert (found.values["apf_g1"], found.values["apf_g0"], found.values["apr_g1"], found.values["apr_g0"]) == \
        pytest.approx((36.0, 51.0, 22.0, 2.0))
    text = overview._gap_alone_text(found)
    assert prose.say(f"gap_alone.start_{start}") in text and "gamma 1 is above gamma 0 (30.0 vs 24.0" in text
    assert "APf 36.0 against 51.0" in text and prose.say("gap_alone.contradiction", **found.values) not in text
    assert found.verdicts["apf"].status == "reproduced" and prose.say("gap_alone.trades_cost") in text
    write(tmp_path, "gap_only", fake(0.2405, apf=0.51, run={"profile": profile}))   # within noise: level,
    text = overview._gap_alone_text(questions.gap_alone(params, tmp_path, paper))      # APf as gamma 0's
    assert "gamma 1 is level with gamma 0" in text and prose.say("gap_alone.trades_free") in text
    write_fresh(tmp_path)                                 # made with other params: the start is not named
    assert "Ours, made with older params than params.yaml's," in overview._gap_alone_text(
        questions.gap_alone(params, tmp_path, paper))


def test_eqlv2_answer_reads_its_1x_runs_and_its_gradient_balance_on_the_claims_metric(tmp_path, params, paper):
    """Masks learned (fake: mask AP = box AP), so mask AP is judged, beside the paper's mask AP (23.6 vs 16.7)."""
    for name in ("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"):
        write(tmp_path, name, fake(0.27))
    write(tmp_path, "eqlv2", fake(0.26))
    diag = {"frequency": ["r", "f"], "gradients": {"objective": {"ratio": [0.8, 1.0]}}}
    for name, ratio in (("eqlv2", [0.8, 1.0]), ("sigmoid_ce", [0.1, 0.9])):
        path = registry.diagnostics_path(name, tmp_path)
        path.write_text(json.dumps({**diag, "gradients": {"objective": {"ratio": ratio}}}))
    found = questions.eqlv2_below_ce(params, tmp_path, paper)
    v = found.values
    assert found.answer == "pending" and (v["paper_eqlv2"], v["paper_ce"], v["name"]) == (23.6, 16.7, "mask AP")
    assert (v["eqlv2"], v["ce"], v["n_eqlv2"], v["n_ce"]) == (26.0, 27.0, 1, 3)
    assert found.verdicts["at_1x"].status == "opposite"
    assert v["mechanism"] == {"towards": True, "eqlv2_r": 0.8, "ce_r": 0.1, "eqlv2_f": 1.0, "ce_f": 0.9, "mu": 0.8}
    assert found.verdicts["rare"].status == "within noise" and found.verdicts["rare"].difference == 0.0
    write(tmp_path, "eqlv2_gap", fake(0.30, apr=0.10))    # GAP on top: 5.0 -> 10.0 APr, beyond 2 x 0.1 x sqrt(2)
    on_top = questions.eqlv2_below_ce(params, tmp_path, paper).verdicts["on_top"]
    assert (on_top.status, on_top.difference, round(on_top.threshold, 2)) == ("reproduced", 5.0, 0.28)
    write(tmp_path, "eqlv2_gap", fake(0.30, apr=0.05))
    assert questions.eqlv2_below_ce(params, tmp_path, paper).verdicts["on_top"].status == "within noise"
    path = registry.diagnostics_path("eqlv2", tmp_path)
    path.write_text(json.dumps({**diag, "gradients": {"objective": {"ratio": [0.05, 1.0]}}}))   # further from 0.8
    assert questions.eqlv2_below_ce(params, tmp_path, paper).values["mechanism"]["towards"] is False
    for name in ("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2", "eqlv2"):   # box-only runs (Faster R-CNN)
        box_only = json.loads(registry.metrics_path(name, tmp_path).read_text())
        del box_only["segm"]
        write(tmp_path, name, box_only)
    v = questions.eqlv2_below_ce(params, tmp_path, paper).values
    assert (v["name"], v["paper_name"], v["paper_eqlv2"], v["paper_ce"]) == ("box AP", "box AP", 24.2, 17.3)


@pytest.mark.parametrize("at_1x, at_2x, answer", [
    ((26.0, 27.0), (45.0, 42.0), "schedule"),           # behind at 1x, ahead at 2x
    ((27.0, 27.0), (43.0, 42.0), "schedule"),           # level at 1x
    ((27.2, 27.0), (42.5, 42.0), "inconclusive"),       # +0.2 (within 0.23) -> +0.5 (real): change 0.3 < 0.37
    ((26.0, 27.0), (42.0, 42.0), "partly_schedule"),    # -1.0 -> 0.0: moves beyond 0.37, not above
    ((26.0, 27.0), (41.0, 42.0), "not_schedule"),       # -1.0 -> -1.0
    ((28.0, 27.0), (43.0, 42.0), "no_disagreement")])   # ahead at both lengths
def test_eqlv2_answer_follows_the_2x_runs(tmp_path, params, paper, at_1x, at_2x, answer):
    """Identical seeds: sd floor 0.1, so a one-seed difference is real above 0.28 and the change of the
    1x difference (1 vs 3 seeds) to the 2x one above 2 x 0.1 x sqrt(1 + 1/3 + 2) = 0.37."""
    for name in ("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"):
        write(tmp_path, name, fake(at_1x[1] / 100))
    write(tmp_path, "eqlv2", fake(at_1x[0] / 100))
    write(tmp_path, "eqlv2_2x", fake(at_2x[0] / 100))
    write(tmp_path, "sigmoid_ce_2x", fake(at_2x[1] / 100))
    found = questions.eqlv2_below_ce(params, tmp_path, paper)
    assert found.answer == answer
    assert found.verdicts["change"].threshold == pytest.approx(2 * 0.1 * (1 + 1 / 3 + 2) ** 0.5)
    assert "**" in overview._eqlv2_text(found)


@pytest.mark.parametrize("adamw, at_2x, answer", [
    ((0.15, 0.15), (0.15, 0.20), "speed_kept"),    # AdamW lifts CE 3 -> 15, GAP adds 0; SGD 2x gain +5 holds
    ((0.15, 0.15), (0.15, 0.15), "speed"),         # ... and the SGD gain fades by 2x
    ((0.15, 0.25), (0.15, 0.20), "holds_both"),    # GAP's gain under AdamW too
    ((0.031, 0.031), (0.15, 0.20), "unsettled")])  # AdamW neither lifts CE (3.0 -> 3.1, within 0.23) nor GAP
def test_gain_answer_joins_the_schedule_and_the_optimizer(tmp_path, params, adamw, at_2x, answer):
    """Seed sd floor 0.1 (identical seeds): a 3-vs-3-seed difference is real above 0.16, a one-seed one above
    0.28, the change of the gain from 1x to 2x above 2 x 0.1 x sqrt(1/3 + 1/3 + 2) = 0.33."""
    write_headline_rows(tmp_path)
    found = questions.gain(params, tmp_path)
    assert found.answer == "pending" and found.verdicts["sgd_1x"].status == "reproduced"
    assert (found.values["ce"], found.values["gap"], found.values["n_ce"]) == (3.0, 8.0, 3)
    write(tmp_path, "sigmoid_ce_adamw", fake(0.35, apr=adamw[0]))
    write(tmp_path, "sigmoid_ce_gap_adamw", fake(0.35, apr=adamw[1]))
    write(tmp_path, "sigmoid_ce_2x", fake(0.42, apr=at_2x[0]))
    write(tmp_path, "sigmoid_ce_gap_2x", fake(0.44, apr=at_2x[1]))
    found = questions.gain(params, tmp_path)
    assert found.answer == answer
    assert found.verdicts["change"].threshold == pytest.approx(2 * 0.1 * (2 / 3 + 2) ** 0.5)
    assert "**" in overview._gain_text(found)
    assert overview._gain_text(found).endswith(prose.say(f"gain.{answer}", **found.values, **found.verdicts))
    if answer.startswith("speed"):   # AdamW's lift of CE is stated against SGD's CE, not as "the rare AP"
        assert "sigmoid CE alone reaches 15.0 (under SGD 3.0)" in overview._gain_text(found)
    for name in ("sigmoid_ce_gap", "sigmoid_ce_gap_seed1", "sigmoid_ce_gap_seed2"):
        write(tmp_path, name, fake(0.28, apr=0.03))
    assert questions.gain(params, tmp_path).answer == "no_gain"


@pytest.mark.parametrize("at_2x, state", [((0.15, 0.20), "holds"), ((0.15, 0.17), "shrinks"),
                                          ((0.15, 0.15), "fades"), ((0.15, 0.12), "turns")])
def test_schedule_state_of_gaps_gain(tmp_path, params, at_2x, state):
    """+5.0 at 1x; at 2x +5.0, +2.0, 0.0, -3.0 (one seed each: real above 0.28, the change above 0.33)."""
    write_headline_rows(tmp_path)
    write(tmp_path, "sigmoid_ce_2x", fake(0.42, apr=at_2x[0]))
    write(tmp_path, "sigmoid_ce_gap_2x", fake(0.44, apr=at_2x[1]))
    assert questions.schedule_state(questions.gain(params, tmp_path).verdicts) == state


def test_schedule_state_is_unclear_when_one_seed_cannot_tell(tmp_path, params):
    """Seed sd 1.0 APr in both 3-seed rows: the 1x gain +2.0 is beyond 2 x 1.0 x sqrt(2/3) = 1.63; at 2x +1.0 is
    within 2.83 of zero, and its change -1.0 within 3.27 of the 1x gain."""
    write_headline_rows(tmp_path, (0.02, 0.03, 0.04), (0.04, 0.05, 0.06), ce_ap=0.30, gap_ap=0.30)
    write(tmp_path, "sigmoid_ce_2x", fake(0.42, apr=0.10))
    write(tmp_path, "sigmoid_ce_gap_2x", fake(0.44, apr=0.11))
    verdicts = questions.gain(params, tmp_path).verdicts
    assert verdicts["sgd_1x"].status == "reproduced" and questions.schedule_state(verdicts) == "unclear"


def test_only_opposite_verdicts_are_disagreements_and_each_is_explained_or_marked(tmp_path, params, paper):
    """ECM + GAP below ECM: within noise is no disagreement; beyond noise it is, and ECM's headroom over sigmoid
    CE (mask AP, set apart from box AP so that the wrong one would show) does not explain a loss."""
    def masks(ap: float, mask: float, apr: float) -> dict:
        m = fake(ap, apr=apr)
        m["segm"]["metrics"].update(AP=mask)
        return m

    for name in ("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"):
        write(tmp_path, name, masks(0.30, 0.27, 0.02))
    write(tmp_path, "ecm", masks(0.38, 0.36, 0.17))
    write(tmp_path, "ecm_gap", masks(0.38, 0.359, 0.21))
    rows = overview.judged_claims(params, tmp_path, paper)
    assert next(r for r in rows if r["pair"] == "Random, ECM + GAP vs Random, ECM")["status"] == "within noise"
    assert "ECM" not in overview.disagreements_markdown(rows, params, tmp_path)
    write(tmp_path, "ecm_gap", masks(0.38, 0.30, 0.21))
    rows = overview.judged_claims(params, tmp_path, paper)
    line = next(x for x in overview.disagreements_markdown(rows, params, tmp_path).splitlines() if "ECM" in x)
    assert line == prose.say("overview.disagreement", pair="Random, ECM + GAP vs Random, ECM", metric="mask AP",
                             ours=-6.0, paper="+3.4", seeds=", one seed per arm",
                             why=prose.say("overview.more_room", base=36.0, ce=27.0, metric="mask AP"))
    write(tmp_path, "ecm", masks(0.24, 0.20, 0.17))       # a baseline below sigmoid CE explains nothing
    write(tmp_path, "ecm_gap", masks(0.24, 0.14, 0.21))
    rows = overview.judged_claims(params, tmp_path, paper)
    line = next(x for x in overview.disagreements_markdown(rows, params, tmp_path).splitlines() if "ECM" in x)
    assert line.endswith(prose.say("overview.unexplained"))


def test_rare_ap_is_judged_on_masks_only_where_rare_masks_are_learned(tmp_path, params, paper):
    """Masks learned overall (mask AP = box AP) but not for rare classes (mask APr 0.3 x box APr): the APr claim is
    read on box APr, the AP claim on mask AP."""
    for names, apr in ((("sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"), 0.03),
                       (("sigmoid_ce_gap", "sigmoid_ce_gap_seed1", "sigmoid_ce_gap_seed2"), 0.10)):
        for name in names:
            m = fake(0.30, apr=apr)
            m["segm"]["metrics"]["APr"] = 0.3 * apr
            write(tmp_path, name, m)
    found = {c["id"]: c for c in claims.claims(params, tmp_path, paper)}
    assert found["gap_lifts_apr"]["pairs"][0]["metric"] == "box APr"
    assert found["gap_lifts_apr"]["pairs"][0]["ours"] == pytest.approx(7.0)
    metric, beside = found["gap_lifts_apr"]["pairs"][0]["beside"]       # the other metric, shown unjudged
    assert metric == "mask APr" and beside == pytest.approx(0.3 * 7.0)
    assert found["gap_helps_every_objective"]["pairs"][0]["metric"] == "mask AP"


def test_a_declared_comparison_is_one_params_entry_and_one_template_group(tmp_path, params, paper, monkeypatch):
    """questions.NAME with kind: compare and its words in prose.yaml: no code. Softmax CE + GAP against softmax CE
    on APr, 12.0 vs 5.0 with one seed each (sd floor 0.1: beyond 2 x 0.1 x sqrt(2)), then not run."""
    import yaml

    params = {**params, "questions": {**params["questions"], "softmax_gap": {
        "kind": "compare", "metric": "APr", "rows": {"better": "table1/random/softmax_ce+gap",
                                                     "worse": "table1/random/softmax_ce"}}}}
    registry.check_questions(params)                       # kind and metric are no runs
    words = {**prose.templates(), "softmax_gap": {
        "title": "Does GAP lift softmax CE's APr?", "not_run": "Not run.",
        "reproduced": "Yes: {ours_worse:.1f} -> {ours_better:.1f} {name} ({difference.status}).",
        "within_noise": "Within noise.", "opposite": "No."}}
    path = tmp_path / "prose.yaml"
    path.write_text(yaml.safe_dump(words))
    monkeypatch.setattr(prose, "PROSE", path)
    write(tmp_path, "softmax_ce", fake(0.30, apr=0.05))
    write(tmp_path, "softmax_ce_gap", fake(0.32, apr=0.12))
    found = questions.compare(params, tmp_path, "softmax_gap")
    assert found.answer == "reproduced" and found.verdicts["difference"].difference == pytest.approx(7.0)
    assert questions.declared(params) == ["softmax_gap"]
    assert "**Does GAP lift softmax CE's APr?** Yes: 5.0 -> 12.0 mask APr (reproduced)." in \
        overview.open_questions_markdown(params, tmp_path, paper)
    (tmp_path / "results/experiments/softmax_ce_gap/metrics.json").unlink()
    assert questions.compare(params, tmp_path, "softmax_gap").answer == "not_run"

"""What a number on a page means, in words: the paragraphs that the overview, every table and figure page
and README open their numbers with (which regime the runs come from, how far they trained).

    regime_markdown(regime.regime(params, root))  # made with params.yaml as it is, or an older regime
    learning_speed_markdown(params, root, runs)    # epochs trained and the convergence check's verdict
"""
from __future__ import annotations

from pathlib import Path

from rog.pipeline.registry import sections
from rog.report import claims, figures
from rog.report.results import load_metrics


def regime_markdown(found: dict, where: str = "in results/") -> str:
    """One paragraph: the runs made with params.yaml as it is, or the warning that they are an older regime.
    `where` names the runs counted ("in results/", "of this page")."""
    total = len(found["runs"])
    if not total:
        return "**Which regime.** No run has results yet: `make repro` makes them."
    if len(found["same"]) == total:
        return (f"**Which regime.** All {total} runs {where} were made with the parameters params.yaml gives "
                f"now.")
    unknown = (f", {len(found['unknown'])} cannot be checked (no params hash recorded, or the pretrained detector "
               "params.yaml's profile starts from is not on this machine)" if found["unknown"] else "")
    if found["same"]:
        older = found["other"] + found["unknown"]
        named = ", ".join(older[:6]) + (f" and {len(older) - 6} more" if len(older) > 6 else "")
        return (f"**Which regime: results/ mixes two.** {len(found['same'])} of {total} runs {where} were made with "
                f"the parameters params.yaml gives now, {len(found['other'])} with others{unknown}: {named}. A "
                "comparison between a current run and an older one is not like with like; `make repro` remakes the "
                "older ones.")
    return (f"**Which regime: results/ holds an older one.** {len(found['other'])} of {total} runs {where} were "
            f"made with other parameters than params.yaml gives now (their checkpoints' params hash differs)"
            + unknown + ". Every number here is from that older regime (README, \"The training regime\"); `make "
              "repro` remakes them with the current ones.")


def epochs_text(params: dict, root: str | Path, runs: list[str]) -> str:
    """Epochs the runs trained, as their records state (run.epochs), e.g. "1.6 (the 2x runs 3.2)"; runs
    recorded before run.epochs existed say so rather than borrow params.yaml's."""
    recorded = [(m.get("run") or {}) for m in (load_metrics(r, root) for r in runs) if m]
    epochs = sorted({float(r["epochs"]) for r in recorded if r.get("epochs")})
    missing = sum(1 for r in recorded if not r.get("epochs"))
    if not epochs:
        return "an unrecorded number of" if missing else "?"
    text = f"{epochs[0]:.1f}" + (f" (the 2x runs {epochs[-1]:.1f})" if len(epochs) > 1 else "")
    return text + (f" ({missing} runs' epochs unrecorded)" if missing else "")


def learning_speed_markdown(params: dict, root: str | Path, runs: list[str]) -> str:
    """What a number of these runs means: epochs trained and the convergence check (the `convergence`
    figure's 2x against 1x runs), as one bold-led sentence."""
    rows = figures.convergence_rows(params, "convergence", root) if "convergence" in sections(params) else []
    checked = [r for r in rows if r["converged"] is not None]
    trained = f"The runs train for {epochs_text(params, root, runs)} epochs of LT-Glyphs (the paper: 12 of LVIS)"
    verdict = claims.convergence_verdict(checked).replace("\n", " ")
    if checked and all(r["converged"] for r in checked):
        return f"**Converged by our check.** {trained}; {verdict}"
    if any(r["converged"] for r in checked):
        return (f"**Not every setting converged by our check.** {trained}; {verdict} Where a setting did not, "
                f"its 1x numbers are statements about learning speed.")
    if not checked:
        long = ", ".join(f"`{r['long']}`" for r in rows if r["long"]) or "none registered"
        verdict = (f"none has been shown to converge: the 2x runs of the convergence check ({long}) are not in "
                   "results/ yet (README, \"The training regime\": the schedules measured so far were far from "
                   "converged)")
    else:
        verdict = "no model has converged: " + verdict.rstrip(".")
    return (f"**A 1x number is a statement about learning speed.** {trained}, and {verdict}. An effect at 1x may "
            f"shrink or vanish at convergence.")

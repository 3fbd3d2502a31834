"""What a number on a page means, in words: the paragraphs that the overview, every table and figure page
and README open their numbers with (which regime the runs come from, how far they trained).

    regime_markdown(regime.regime(params, root))  # made with params.yaml as it is, or an older regime
    learning_speed_markdown(params, root, runs)    # epochs trained and the convergence check's verdict
"""
from __future__ import annotations

from pathlib import Path

from rog.pipeline.registry import sections
from rog.report import claims, figures
from rog.report.prose import say
from rog.report.results import load_metrics


def regime_markdown(found: dict, where: str = "in results/") -> str:
    """One paragraph: the runs made with params.yaml as it is, or the warning that they are an older regime.
    `where` names the runs counted ("in results/", "of this page"). Words: prose.yaml `regime`."""
    total = len(found["runs"])
    if not total:
        return say("regime.none")
    if len(found["same"]) == total:
        return say("regime.current", total=total, where=where)
    unknown = say("regime.unknown", n=len(found["unknown"])) if found["unknown"] else ""
    if found["same"]:
        older = found["other"] + found["unknown"]
        named = ", ".join(older[:6]) + (f" and {len(older) - 6} more" if len(older) > 6 else "")
        return say("regime.mixed", same=len(found["same"]), total=total, where=where, other=len(found["other"]),
                   unknown=unknown, named=named)
    return say("regime.older", other=len(found["other"]), total=total, where=where, unknown=unknown)


def epochs_text(params: dict, root: str | Path, runs: list[str]) -> str:
    """Epochs the runs trained, as their records state (run.epochs), e.g. "1.6 (the 2x runs 3.2)"; runs
    recorded before run.epochs existed say so rather than borrow params.yaml's. Post-hoc evaluations
    (run.posthoc) train nothing: their model is their source's, counted under its own name."""
    recorded = [(m.get("run") or {}) for m in (load_metrics(r, root) for r in runs) if m]
    recorded = [r for r in recorded if not r.get("posthoc")]
    epochs = sorted({float(r["epochs"]) for r in recorded if r.get("epochs")})
    missing = sum(1 for r in recorded if not r.get("epochs"))
    if not epochs:
        return say("epochs.none_recorded" if missing else "epochs.unknown")
    text = f"{epochs[0]:.1f}" + (" " + say("epochs.longer", epochs=epochs[-1]) if len(epochs) > 1 else "")
    return text + (" " + say("epochs.missing", n=missing) if missing else "")


def shortest_runs(runs: list[str], root: str | Path) -> list[str]:
    """The runs of the shortest recorded schedule (run.iterations) among `runs`: the 1x runs."""
    iterations = {r: ((load_metrics(r, root) or {}).get("run") or {}).get("iterations") for r in runs}
    least = min((i for i in iterations.values() if i), default=None)
    return [r for r, i in iterations.items() if i == least]


def learning_speed_markdown(params: dict, root: str | Path, runs: list[str], brief: bool = False) -> str:
    """What a number of these runs means: epochs trained and the convergence check (the `convergence`
    figure's 2x against 1x runs), as one bold-led sentence. `brief` (the overview's footer): where a setting
    did not converge, the 1x epochs and the count of converged settings only. Words: prose.yaml
    `learning_speed`."""
    rows = figures.convergence_rows(params, "convergence", root) if "convergence" in sections(params) else []
    checked = [r for r in rows if r["converged"] is not None]
    if brief and not (checked and all(r["converged"] for r in checked)):
        return say("learning_speed.brief", epochs=epochs_text(params, root, shortest_runs(runs, root)),
                   checked=f"{sum(bool(r['converged']) for r in checked)} of {len(checked)}")
    trained = say("learning_speed.trained", epochs=epochs_text(params, root, runs))
    verdict = claims.convergence_verdict(checked).replace("\n", " ")
    if checked and all(r["converged"] for r in checked):
        return say("learning_speed.converged", trained=trained, verdict=verdict)
    if any(r["converged"] for r in checked):
        return say("learning_speed.partly", trained=trained, verdict=verdict)
    if not checked:
        long = ", ".join(f"`{r['long']}`" for r in rows if r["long"]) or "none registered"
        return say("learning_speed.unchecked", trained=trained, long=long)
    return say("learning_speed.not_converged", trained=trained, verdict=verdict.rstrip("."))

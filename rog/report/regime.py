"""Which regime a set of results comes from, and what a number from it means: the paragraphs that the
overview, every table and figure page and README open their numbers with, computed from results/.

    found = regime(params, root)                 # every run with results, or `runs=` a page's runs
    regime_markdown(found)                       # made with today's params.yaml, or an older regime
    learning_speed_markdown(params, root, runs)  # epochs trained and the convergence check's verdict
"""
from __future__ import annotations

from pathlib import Path

from rog.pipeline.registry import run_names, sections
from rog.report import claims, figures
from rog.report.results import load_metrics

DATASET_ROOT = "out/pipeline/{profile}/dataset"  # the dataset root the experiment stages train with


def regime(params: dict, root: str | Path = ".", runs: list[str] | None = None) -> dict:
    """Whether results/ was made with the params params.yaml gives now.

    A run matches when the params hash of its checkpoint (metrics.json's checkpoint.params_hash) equals
    rog.engine.rundir.params_hash of what `rog train` would resolve for it now (its profile, the stage's
    dataset root). `runs`: the runs to check (default: the registry's). Returns {runs: [with results],
    same: [...], other: [...], unknown: [...]} (unknown: no hash recorded, a pretrained detector that today's
    params start from and this machine lacks (the hash reads its digest), or params that no longer
    resolve, e.g. a run removed from the registry).
    """
    from rog.config import resolve_run
    from rog.engine.rundir import params_hash

    out = {"runs": [], "same": [], "other": [], "unknown": []}
    experiments = params.get("experiments") or {}
    for run in run_names(params) if runs is None else runs:
        metrics = load_metrics(run, root)
        if metrics is None:
            continue
        out["runs"].append(run)
        recorded = (metrics.get("checkpoint") or {}).get("params_hash")
        profile = (metrics.get("run") or {}).get("profile") or params.get("profile")
        source = run if run in experiments else ((params.get("posthoc") or {}).get(run) or {}).get("source")
        if not recorded or source not in experiments:
            out["unknown"].append(run)
            continue
        try:
            now = resolve_run(params, profile, source, [f"dataset.root={DATASET_ROOT.format(profile=profile)}"])
            weights = now["model"].get("weights")
            if weights:  # the hash reads the pretrained detector's digest; a relative path is below `root`
                located = Path(weights) if Path(weights).is_absolute() else Path(root) / weights
                if not located.is_file():
                    out["unknown"].append(run)
                    continue
                now["model"]["weights"] = str(located)
            out["same" if params_hash(now) == recorded else "other"].append(run)
        except (ValueError, KeyError, OSError):
            out["unknown"].append(run)
    return out


def regime_markdown(found: dict, where: str = "in results/") -> str:
    """One paragraph: the runs made with today's params, or the warning that they are an older regime.
    `where` names the runs counted ("in results/", "of this page")."""
    total = len(found["runs"])
    if not total:
        return "**Which regime.** No run has results yet: `make repro` makes them."
    if len(found["same"]) == total:
        return (f"**Which regime.** All {total} runs {where} were made with the parameters params.yaml gives "
                f"now (each checkpoint's params hash equals today's).")
    unknown = (f", {len(found['unknown'])} cannot be checked (no params hash recorded, or the pretrained detector "
               "today's params start from is not on this machine)" if found["unknown"] else "")
    if found["same"]:
        older = found["other"] + found["unknown"]
        named = ", ".join(older[:6]) + (f" and {len(older) - 6} more" if len(older) > 6 else "")
        return (f"**Which regime: results/ mixes two.** {len(found['same'])} of {total} runs {where} were made with "
                f"the parameters params.yaml gives now, {len(found['other'])} with others{unknown}: {named}. A "
                "comparison between a current run and an older one is not like with like; `make repro` remakes the "
                "older ones.")
    return (f"**Which regime: results/ holds an older one.** {len(found['other'])} of {total} runs {where} were "
            f"made with other parameters than params.yaml gives now (their checkpoints' params hash differs)"
            + unknown + ". Every number below is from that older regime (README, \"The training regime\"); the "
              "re-run on the current code replaces it.")


def epochs_text(params: dict, root: str | Path, runs: list[str]) -> str:
    """Epochs of LT-Glyphs the runs trained (iterations x batch / training images), e.g. "3.2 (the 2x runs 6.4)"."""
    from rog.config import resolve_run

    iterations = sorted({int(m["run"]["iterations"]) for m in (load_metrics(r, root) for r in runs)
                         if m and (m.get("run") or {}).get("iterations")})
    if not iterations:
        return "?"
    resolved = resolve_run(params, params.get("profile"))
    epochs = [it * resolved["train"]["batch_size"] / resolved["dataset"]["glyphs"]["num_train"] for it in iterations]
    return f"{epochs[0]:.1f}" + (f" (the 2x runs {epochs[-1]:.1f})" if len(epochs) > 1 else "")


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

"""Projected wall time of the default pipeline from the recorded timings: `python -m rog report projection`.

Every run of the registry (experiments, then post-hoc evaluations) costs its training and evaluation
seconds, read from results/experiments/RUN/metrics.json's run.train_seconds, run.eval_seconds, run.jobs
and run.iterations (written by rog.pipeline.stage). A run is *measured* when its metrics.json has
these fields and was made with the pipeline's profile; its training seconds are its seconds per
iteration times the iterations the registry gives it now (rog.config.resolve_run: the profile's iterations
x schedule.length), its evaluation seconds as recorded (the learning curve's, run.curve_seconds,
included). Any other run (not run yet, or run by older
code that recorded no timings) is *estimated*: the median seconds per iteration of the measured
experiments times its iterations, and the median evaluation seconds of the measured runs. Post-hoc
evaluations train nothing (0 iterations).

The budget: the registry's runs, in registry order (its priority: the headline rows first), are summed
until BUDGET_HOURS of compute; the runs after that point are named (`beyond_budget`).

Wall time with J processes side by side = (sum of the runs' seconds) / J. Assumption: a run measured
with jobs=j already includes the slowdown of sharing the machine with j - 1 others, so the sum is the
busy time of J parallel slots, kept full. Measured at j = 1 and projected at J = 2 on 2 cores this
is optimistic. The dataset and notebook stages are not counted.

`ladder_reference(regime)` reads a candidate regime's runs of the fidelity ladder (results/ladder/REGIME/,
benchmarks/ladder.py): their median seconds per iteration and evaluation seconds. Given as `reference`,
every run is estimated from it instead of from results/experiments: the registry's cost in that regime.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from rog.config import resolve_run
from rog.pipeline.registry import metrics_path, read_params

DEFAULT_JOBS = 2
BUDGET_HOURS = 20.0  # the registry's compute budget (core-hours: one thread per run); runs beyond it are named
ASSUMPTION = ("each run's seconds, measured with `jobs` processes side by side, already include that slowdown;\n"
              "wall = compute / J with J slots kept busy; dataset and notebook stages not counted")


class ProjectionError(ValueError):
    """Nothing (or not enough) is recorded to project from."""


def load_metrics(run: str, root: str | Path) -> dict | None:
    path = metrics_path(run, root)
    return json.loads(path.read_text()) if path.is_file() else None


def recorded(metrics: dict | None, profile: str) -> dict | None:
    """{iterations, train_seconds, eval_seconds, jobs} from a metrics.json made with `profile` that
    records its timings; None otherwise (missing run, older code, another profile)."""
    run = (metrics or {}).get("run") or {}
    if run.get("profile") != profile or "train_seconds" not in run or "eval_seconds" not in run:
        return None
    return {"iterations": int(run.get("iterations", 0)), "train_seconds": float(run["train_seconds"]),
            "eval_seconds": float(run["eval_seconds"]) + float(run.get("curve_seconds", 0.0)),
            "jobs": int(run.get("jobs", 1))}


def _planned(params: dict) -> list[tuple[str, int]]:
    """(run, iterations the pipeline trains it for): experiments, then post-hoc runs (0)."""
    profile = params.get("profile", "default")
    runs = [(name, int(resolve_run(params, profile, name)["train"]["iterations"]))
            for name in params.get("experiments") or {}]
    return runs + [(name, 0) for name in params.get("posthoc") or {}]


def ladder_reference(regime: str, root: str | Path = ".") -> dict:
    """{seconds_per_iteration, eval_seconds, runs}: medians over the 1x runs of a ladder regime's records."""
    folder = Path(root) / "results" / "ladder" / regime
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "dataset.json"]
    records = [r for r in records if r.get("iterations") and r.get("train_seconds")]
    if not records:
        raise ProjectionError(f"{folder}: no ladder run recorded for regime '{regime}' (python benchmarks/ladder.py)")
    return {"seconds_per_iteration": statistics.median(r["train_seconds"] / r["iterations"] for r in records),
            "eval_seconds": statistics.median(r["eval_seconds"] for r in records), "runs": len(records)}


def projection(params_path: str | Path | dict = "params.yaml", root: str | Path = ".", jobs: int = DEFAULT_JOBS,
               reference: dict | None = None) -> dict:
    """The cost of every registry run and the totals (see the module docstring); seconds throughout.
    params_path: params.yaml's path, or its content already read.

    Returns {rows: [{run, iterations, train_seconds, eval_seconds, jobs (None when estimated), measured}],
    sorted by cost (train + eval), most expensive first; jobs: J; compute_seconds: the rows' sum;
    wall_seconds: compute_seconds / J; measured, estimated: run counts; beyond_budget: the runs (registry
    order) after the first BUDGET_HOURS of compute; seconds_per_iteration and
    eval_seconds: the medians estimates use (None when nothing needed them)}.
    ProjectionError when no run has a recorded timing, or runs to estimate lack what estimates need.
    reference: {seconds_per_iteration, eval_seconds} estimating every run (`ladder_reference`).
    """
    if jobs < 1:
        raise ProjectionError(f"--jobs must be >= 1, got {jobs}")
    params = params_path if isinstance(params_path, dict) else read_params(params_path)
    profile = params.get("profile", "default")
    planned = _planned(params)
    found = {name: recorded(load_metrics(name, root), profile) for name, _ in planned}
    measured = {name: r for name, r in found.items() if r is not None} if reference is None else {}
    where = Path(root) / "results/experiments/RUN/metrics.json"
    if reference is not None:
        rate, eval_median = float(reference["seconds_per_iteration"]), float(reference["eval_seconds"])
    elif not measured:
        raise ProjectionError(f"no recorded timing: none of the {len(planned)} runs' {where} has run.train_seconds "
                              f"and run.eval_seconds for profile '{profile}' (results from older code lack them); "
                              "run an experiment with the current code first")
    else:
        rates = [r["train_seconds"] / r["iterations"] for r in measured.values()
                 if r["iterations"] > 0 and r["train_seconds"] > 0]
        rate = statistics.median(rates) if rates else None
        eval_median = statistics.median(r["eval_seconds"] for r in measured.values())
    rows = []
    for name, iterations in planned:
        r = measured.get(name)
        own_rate = r["train_seconds"] / r["iterations"] if r and r["iterations"] > 0 else None
        if r is not None and (iterations == 0 or own_rate):
            train = own_rate * iterations if iterations else 0.0
            rows.append({"run": name, "iterations": iterations, "train_seconds": train,
                         "eval_seconds": r["eval_seconds"], "jobs": r["jobs"], "measured": True})
            continue
        if iterations and rate is None:
            raise ProjectionError(f"cannot estimate '{name}': no experiment's {where} records run.train_seconds "
                                  "(only post-hoc evaluations are measured)")
        rows.append({"run": name, "iterations": iterations, "train_seconds": rate * iterations if iterations else 0.0,
                     "eval_seconds": eval_median, "jobs": None, "measured": False})
    beyond, spent = [], 0.0
    for row in rows:  # registry order
        spent += row["train_seconds"] + row["eval_seconds"]
        if spent > BUDGET_HOURS * 3600:
            beyond.append(row["run"])
    rows.sort(key=lambda row: (-(row["train_seconds"] + row["eval_seconds"]), row["run"]))
    compute = sum(row["train_seconds"] + row["eval_seconds"] for row in rows)
    n_measured = sum(row["measured"] for row in rows)
    estimated = len(rows) - n_measured
    return {"rows": rows, "jobs": jobs, "compute_seconds": compute, "wall_seconds": compute / jobs,
            "measured": n_measured, "estimated": estimated, "beyond_budget": beyond,
            "seconds_per_iteration": rate if estimated else None, "eval_seconds": eval_median if estimated else None}


def _hours(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 3600:.2f} h)"


def text(result: dict) -> str:
    """The projection as a plain-text table and its totals (what the command prints)."""
    lines = [f"{'run':<32} {'iterations':>10} {'train s':>9} {'eval s':>8} {'jobs':>4}  timing"]
    for row in result["rows"]:
        jobs = "-" if row["jobs"] is None else str(row["jobs"])
        lines.append(f"{row['run']:<32} {row['iterations']:>10} {row['train_seconds']:>9.0f} "
                     f"{row['eval_seconds']:>8.0f} {jobs:>4}  {'measured' if row['measured'] else 'estimated'}")
    lines.append("")
    lines.append(f"runs: {result['measured']} measured, {result['estimated']} estimated"
                 + (f" (median {result['seconds_per_iteration']:.3f} s/iteration, {result['eval_seconds']:.0f} s "
                    "evaluation)" if result["estimated"] and result["seconds_per_iteration"] is not None else ""))
    lines.append(f"compute: {_hours(result['compute_seconds'])} summed over the runs")
    lines.append(f"projected wall time with {result['jobs']} side by side: {_hours(result['wall_seconds'])}")
    beyond = result.get("beyond_budget") or []
    lines.append(f"beyond the budget of {BUDGET_HOURS:g} h of compute, in registry order: "
                 + (f"{len(beyond)} runs: {', '.join(beyond)}" if beyond else "none"))
    lines.append(f"assumes {ASSUMPTION}")
    return "\n".join(lines) + "\n"

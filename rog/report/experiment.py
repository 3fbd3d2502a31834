"""One registry entry end to end, as notebooks/experiment.ipynb and notebooks/posthoc.ipynb run it.

run_experiment(name, profile, dataset_root, runs_root, weights) trains experiment NAME of params.yaml
into RUNS_ROOT/NAME (resuming an interrupted run of the same params, starting over otherwise), evaluates
its final checkpoint and writes results/experiments/NAME/ (weights: the pretrained backbone file that
model.backbone.weights 'pretrain' stands for; None: the pretrain command's default folder):

    metrics.json       rog.evaluation.metrics.evaluate_all's dict plus "run" (name, profile, params,
                       and the timings train_seconds, eval_seconds, jobs: see run_experiment)
    summary.json       the flat headline numbers: the DVC metric (`dvc metrics show/diff`)
    diagnostics.json   the run's gradient statistics and classifier weight norms (Figures 4, 5a)
    curve.json         the learning curve (rog.engine.curve): with evaluate.curve, one point per kept
                       checkpoint (train.keep_every) and the final model; without, the final point only
                       (free: the main metrics), so that every experiment stage has the same outputs

run_posthoc(name, ...) evaluates posthoc.NAME: the source experiment's checkpoint with its objective
wrapped in NorCal (rog.losses.calibration), written the same way (no diagnostics).

The timings feed `python -m rog report projection` (rog.report.projection); summary.json, the DVC
metric, leaves them out so that it stays deterministic.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from rog.report.registry import RESULTS, RegistryError, experiment_params, read_params

SUMMARY_KEYS = ("AP", "AP50", "APr", "APc", "APf", "AR")
JOBS_ENV = "ROG_JOBS"  # experiment processes side by side, exported by rog.report.parallel


def jobs_from_env() -> int:
    """How many experiment processes run side by side with this one: $ROG_JOBS, 1 when unset."""
    text = os.environ.get(JOBS_ENV, "").strip() or "1"
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ValueError(f"environment variable {JOBS_ENV}={text!r}: expected a whole number >= 1")
    return jobs


def summary(metrics: dict) -> dict:
    """{bbox: {AP, AP50, APr, APc, APf, AR}, segm: {...}} rounded to 4 digits (the DVC metric)."""
    return {t: {k: round(float(metrics[t]["metrics"][k]), 4) for k in SUMMARY_KEYS}
            for t in ("bbox", "segm") if t in metrics}


def _dump(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def prepare_run_dir(run_dir: Path, params: dict) -> str:
    """Leave run_dir ready for rog.engine.trainer.train: keep an unfinished run of these params (it
    resumes), remove anything else. Returns what was done: 'fresh', 'resume' or 'restart'."""
    from rog.engine import checkpoint, rundir

    if not run_dir.exists() or not any(run_dir.iterdir()):
        return "fresh"
    try:
        rundir.check(run_dir, params)
    except rundir.RunDirError:
        shutil.rmtree(run_dir)
        return "restart"
    last = run_dir / "checkpoints" / "last.pt"
    final = run_dir / "model_final.pt"
    if last.is_file() and not final.is_file():
        state = checkpoint.load(last)
        if int(state["iteration"]) >= int(params["train"]["iterations"]):
            shutil.copyfile(last, final)  # the run ended but DVC removed its output: same state
            return "resume"
    if final.is_file() or not last.is_file():
        shutil.rmtree(run_dir)
        return "restart"
    return "resume"


def _with_root(params: dict, dataset_root: str | None, profile: str, weights: str | None) -> dict:
    """The pipeline's paths: the dataset (LT-Glyphs) and the pretrained backbone (when weights: pretrain)."""
    from rog.models.pretrained import resolve_weights

    if dataset_root is not None and params["dataset"]["name"] == "lt_glyphs":
        params["dataset"]["root"] = str(dataset_root)
    return resolve_weights(params, profile, weights)


def run_experiment(name: str, profile: str, dataset_root: str | None, runs_root: str | Path,
                   params_path: str | Path = "params.yaml", results_root: str | Path = RESULTS,
                   progress: bool = False, weights: str | None = None) -> dict:
    """Train and evaluate experiment `name`; returns the metrics dict (see the module docstring).

    run.train_seconds: the summed per-iteration seconds of the run's losses.jsonl (all sittings of a
    resumed run, no idle time); run.eval_seconds: wall seconds of inference + LVIS evaluation of the
    final model; run.curve_seconds: wall seconds of the learning curve's other checkpoints (0 without
    evaluate.curve; cached points cost nothing); run.jobs: $ROG_JOBS, the experiments running side by
    side (1 when unset).
    """
    from rog.engine.curve import learning_curve, point, write_curve
    from rog.engine.inference import evaluate_checkpoint
    from rog.engine.trainer import LOSS_LOG, log_seconds, train

    jobs = jobs_from_env()  # before training: a bad value fails at once
    params = _with_root(experiment_params(params_path, profile, name), dataset_root, profile, weights)
    run_dir = Path(runs_root) / name
    state = prepare_run_dir(run_dir, params)
    final = train(params, run_dir, progress=progress)
    train_seconds = log_seconds(run_dir / LOSS_LOG)
    out = Path(results_root) / name
    start = time.perf_counter()
    metrics = evaluate_checkpoint(final, run_dir / "eval", params)
    eval_seconds = time.perf_counter() - start
    start = time.perf_counter()
    if params["evaluate"].get("curve"):
        curve = learning_curve(run_dir, params, final_metrics=metrics, progress=progress)
    else:
        curve = [point(metrics, int(params["train"]["iterations"]))]
    write_curve(out / "curve.json", curve)
    timing = {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "jobs": jobs,
              "curve_seconds": time.perf_counter() - start}
    return _write_results(out, name, profile, params, metrics, run_dir / "diagnostics.json", state, timing)


def run_posthoc(name: str, profile: str, dataset_root: str | None, runs_root: str | Path,
                params_path: str | Path = "params.yaml", results_root: str | Path = RESULTS,
                weights: str | None = None) -> dict:
    """Evaluate posthoc.NAME: its source's final checkpoint, scores calibrated with NorCal.

    Records run.eval_seconds and run.jobs as run_experiment does, and run.train_seconds 0 (nothing is
    trained; run.iterations stays the source's schedule).
    """
    jobs = jobs_from_env()
    spec = (read_params(params_path).get("posthoc") or {}).get(name)
    if spec is None:
        raise RegistryError(f"no posthoc entry '{name}' in {params_path}")
    source = spec["source"]
    params = _with_root(experiment_params(params_path, profile, source), dataset_root, profile, weights)
    checkpoint_path = Path(runs_root) / source / "model_final.pt"
    if not checkpoint_path.is_file():
        raise FileNotFoundError(
            f"posthoc '{name}' needs {checkpoint_path}, the final checkpoint of experiment '{source}', which is "
            f"not there (checkpoints are not kept by DVC or git). Retrain it, with the same metrics: "
            f"dvc repro -f -s experiment@{source}")
    start = time.perf_counter()
    metrics = evaluate_norcal(checkpoint_path, Path(runs_root) / source / f"eval_{name}", params,
                              float(spec.get("norcal_gamma", 1.0)))
    timing = {"train_seconds": 0.0, "eval_seconds": time.perf_counter() - start, "jobs": jobs}
    return _write_results(Path(results_root) / name, name, profile, params, metrics, None, "posthoc", timing,
                          extra={"posthoc": dict(spec)})


def evaluate_norcal(checkpoint_path: str | Path, out_dir: str | Path, params: dict, gamma: float) -> dict:
    """rog.engine.inference.evaluate_checkpoint with the model's objective wrapped in NorCal(gamma)."""
    from rog.engine import checkpoint as ckpt
    from rog.engine.inference import evaluate_checkpoint
    from rog.losses.calibration import NorCal

    def calibrate(model, state: dict) -> None:
        heads = model.roi_heads
        heads.objective = NorCal(heads.objective, ckpt.counts_from_state(state), gamma=gamma)

    metrics = evaluate_checkpoint(checkpoint_path, out_dir, params, adjust_model=calibrate)
    metrics["checkpoint"]["norcal_gamma"] = gamma
    return metrics


def _write_results(out: Path, name: str, profile: str, params: dict, metrics: dict,
                   diagnostics: Path | None, state: str, timing: dict, extra: dict | None = None) -> dict:
    """Write metrics.json (metrics + "run", timing included), summary.json (no timing) and diagnostics.json.

    timing: {train_seconds, eval_seconds, jobs} and, for experiments, curve_seconds (see run_experiment);
    seconds rounded to 0.01 s.
    """
    metrics = dict(metrics)
    metrics["run"] = {"name": name, "profile": profile, "run_dir_state": state,
                      "iterations": int(params["train"]["iterations"]), "seed": int(params["train"]["seed"]),
                      "objective": params["model"]["objective"], "gap": params["model"]["gap"],
                      "sampler": params["dataset"]["sampler"]["kind"],
                      **{k: round(float(v), 2) for k, v in timing.items() if k.endswith("_seconds")},
                      "jobs": int(timing["jobs"]), **(extra or {})}
    metrics["run"].pop("run_dir_state")  # how the folder was found is not a result (keeps reruns equal)
    _dump(out / "metrics.json", metrics)
    _dump(out / "summary.json", summary(metrics))
    if diagnostics is not None:
        shutil.copyfile(diagnostics, out / "diagnostics.json")
    return metrics

"""The experiment and post-hoc stages: `rog train` / `rog evaluate` launched as processes, then recorded.

run_experiment(name, profile, dataset_root, runs_root) is what notebooks/experiment.ipynb (stage
experiment@NAME) runs:

    python -m rog train    --profile P --experiment NAME --set dataset.root=D --out RUNS/NAME
        (torchrun --nproc_per_node N -m rog train ... when train.processes N > 1)
    python -m rog evaluate --profile P --experiment NAME --set dataset.root=D
                           --checkpoint RUNS/NAME/model_final.pt --out RUNS/NAME/eval

then writes results/experiments/NAME/:

    metrics.json       rog.evaluation.metrics.evaluate_all's dict plus "run": name, profile, iterations,
                       seed, objective, ranking (model.ranking; runs before it: gap), sampler,
                       train_images, epochs, lr_drops (what the report reads instead of today's params)
                       and the timings train_seconds (the summed per-iteration seconds of losses.jsonl:
                       every start of a resumed run, no idle
                       time), eval_seconds, curve_seconds (rog evaluate's timing.json) and jobs ($ROG_JOBS,
                       the experiments side by side; read by rog.pipeline.projection)
    summary.json       the flat headline numbers: the DVC metric (no timings, so it is deterministic)
    diagnostics.json   gradient statistics and classifier weight norms (Figures 4, 5a)
    curve.json         the learning curve (rog.engine.curve): with evaluate.curve, every kept checkpoint
                       and the final model; without, the final point only, so every experiment stage
                       has the same outputs
    losses.json        the training losses, averaged over windows of iterations (at most LOSS_POINTS
                       points): what the run's report notebook plots
    lookalike.json     what the detector makes of each rare object: correct, a look-alike, another
                       class, missed (rog.evaluation.lookalike; rog evaluate writes it)
    detections.json    the top detections of four validation images (rog.evaluation.samples), drawn by
                       the report without a checkpoint

run_posthoc(name, ...) (stage posthoc@NAME) runs `rog evaluate --experiment NAME` on the source
experiment's final checkpoint (a post-hoc name resolves to its source's params with its NorCal gamma)
and writes metrics.json and summary.json the same way.

The params of both commands are rog.config.resolve_run's for the same names (tests/test_pipeline_run.py).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rog.config import resolve_run
from rog.paths import RESULTS_DIR

RESULTS = Path(RESULTS_DIR)
SUMMARY_KEYS = ("AP", "AP50", "APr", "APc", "APf", "AR")
JOBS_ENV = "ROG_JOBS"  # experiment processes side by side, exported by rog.pipeline.parallel
LOSS_POINTS = 200
ANALYSES = ("lookalike.json", "detections.json")  # written by `rog evaluate`, recorded indented
# the command modules this module starts in subprocesses (train_command, evaluate_command): imports by another
# name, read by rog.pipeline.imports so that the experiment stage depends on their code (tests/test_layers.py)
LAUNCHES = ("rog.__main__", "rog.cli", "rog.commands.train", "rog.commands.evaluate")


class StageError(RuntimeError):
    """A command of the stage failed; the message holds the command and its output's tail."""


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


def stage_overrides(name: str, profile: str, dataset_root: str | None, params_path: str | Path) -> list[str]:
    """The stage's --set: the pipeline's rendered dataset as dataset.root (a rendered dataset only,
    rog.data.registry: LT-Glyphs; a real one is read where the profile says)."""
    from rog.data.registry import dataset_spec

    if dataset_root is None:
        return []
    if not dataset_spec(resolve_run(params_path, profile, name)["dataset"]["name"]).rendered:
        return []
    return [f"dataset.root={dataset_root}"]


def params_arguments(name: str, profile: str, overrides: list[str], params_path: str | Path) -> list[str]:
    """The arguments naming a run's params, shared by its train and evaluate commands."""
    return ["--params", str(params_path), "--profile", profile, "--experiment", name] + (
        ["--set", *overrides] if overrides else [])


def train_command(name: str, profile: str, overrides: list[str], run_dir: str | Path,
                  params_path: str | Path = "params.yaml", processes: int = 1) -> list[str]:
    """argv of `rog train` for experiment `name`; under torchrun when processes > 1."""
    tail = ["train", *params_arguments(name, profile, overrides, params_path), "--out", str(run_dir),
            "--no-progress"]
    if processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                "-m", "rog", *tail]
    return [sys.executable, "-m", "rog", *tail]


def evaluate_command(name: str, profile: str, overrides: list[str], checkpoint: str | Path,
                     out: str | Path, params_path: str | Path = "params.yaml") -> list[str]:
    """argv of `rog evaluate` for registry entry `name` (an experiment or a post-hoc evaluation)."""
    return [sys.executable, "-m", "rog", "evaluate", *params_arguments(name, profile, overrides, params_path),
            "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"]


def launch(argv: list[str], log=print) -> None:
    """Run a command to the end; StageError with its output's tail when it fails."""
    log("$ " + " ".join(["python", *argv[1:]] if argv[0] == sys.executable else argv))
    result = subprocess.run(argv, text=True, capture_output=True)
    if result.stdout.strip():
        log(result.stdout.strip()[-4000:])
    if result.returncode != 0:
        raise StageError(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout[-4000:]}\n"
                         f"{result.stderr[-6000:]}")


def prepare_run_dir(run_dir: Path, params: dict) -> str:
    """Leave run_dir ready for `rog train`: keep an unfinished run of these params (it resumes), remove
    anything else. Returns what was done: 'fresh', 'resume' or 'restart'."""
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
            shutil.copyfile(last, final)  # the run ended but its final copy is gone: same state
            return "resume"
    if final.is_file() or not last.is_file():
        shutil.rmtree(run_dir)
        return "restart"
    return "resume"


def run_experiment(name: str, profile: str, dataset_root: str | None, runs_root: str | Path,
                   params_path: str | Path = "params.yaml", results_root: str | Path = RESULTS,
                   log=print) -> dict:
    """Train and evaluate experiment `name` through the CLI, then record it (see the module docstring);
    returns the recorded metrics dict."""
    from rog.engine.curve import point
    from rog.engine.trainer import LOSS_LOG, log_seconds

    jobs = jobs_from_env()  # before training: a bad value fails at once
    overrides = stage_overrides(name, profile, dataset_root, params_path)
    params = resolve_run(params_path, profile, name, overrides)
    run_dir = Path(runs_root) / name
    log(f"run folder {run_dir}: {prepare_run_dir(run_dir, params)}")
    processes = int(params["train"].get("processes", 1))
    launch(train_command(name, profile, overrides, run_dir, params_path, processes), log)
    eval_dir = run_dir / "eval"
    launch(evaluate_command(name, profile, overrides, run_dir / "model_final.pt", eval_dir, params_path), log)
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    timing = json.loads((eval_dir / "timing.json").read_text())
    out = Path(results_root) / name
    if params["evaluate"].get("curve"):
        curve = json.loads((eval_dir / "curve.json").read_text())
    else:
        curve = [point(metrics, int(params["train"]["iterations"]))]
    _dump(out / "curve.json", curve)
    _dump(out / "losses.json", loss_curve(run_dir / LOSS_LOG))
    for file in ANALYSES:
        _dump(out / file, json.loads((eval_dir / file).read_text()))
    timing = {"train_seconds": log_seconds(run_dir / LOSS_LOG), **timing, "jobs": jobs}
    # the evaluation's provenance is metrics["provenance"]; the training's (its last start) goes beside it
    run_json = run_dir / "run.json"
    metrics["train_provenance"] = json.loads(run_json.read_text()).get("provenance") if run_json.is_file() else None
    return record(out, name, profile, params, metrics, timing, run_dir / "diagnostics.json",
                  extra=training_record(params))


def training_record(params: dict) -> dict:
    """How the run trained, so that the report reads it instead of resolving today's params:
    {train_images: annotated training images, epochs: iterations x batch size / train_images, lr_drops:
    the iterations where the LR dropped (rog.config.step_iterations of train.lr_steps)}."""
    from rog.config import step_iterations
    from rog.data.build import dataset_paths
    from rog.data.fidelity import data_statistics

    train = json.loads(dataset_paths(params["dataset"], "train")[0].read_text())
    images = data_statistics(train)["train_images"]
    iterations = int(params["train"]["iterations"])
    return {"train_images": images, "epochs": round(iterations * int(params["train"]["batch_size"]) / max(images, 1), 4),
            "lr_drops": step_iterations(iterations, params["train"]["lr_steps"])}


def run_posthoc(name: str, profile: str, dataset_root: str | None, runs_root: str | Path,
                params_path: str | Path = "params.yaml", results_root: str | Path = RESULTS,
                log=print) -> dict:
    """Evaluate posthoc.NAME through `rog evaluate` on its source's final checkpoint and record it;
    run.train_seconds is 0 (nothing is trained; run.iterations stays the source's schedule)."""
    from rog.config import read_yaml

    jobs = jobs_from_env()
    spec = (read_yaml(params_path).get("posthoc") or {}).get(name)
    if spec is None:
        raise ValueError(f"{params_path}: no posthoc entry '{name}'")
    source = spec["source"]
    overrides = stage_overrides(name, profile, dataset_root, params_path)
    params = resolve_run(params_path, profile, name, overrides)
    checkpoint = Path(runs_root) / source / "model_final.pt"
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"posthoc '{name}' needs {checkpoint}, the final checkpoint of experiment '{source}', which is "
            f"not there (checkpoints are not kept by DVC or git). Retrain it, with the same metrics: "
            f"dvc repro -f -s experiment@{source}")
    eval_dir = Path(runs_root) / source / f"eval_{name}"
    launch(evaluate_command(name, profile, overrides, checkpoint, eval_dir, params_path), log)
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    timing = json.loads((eval_dir / "timing.json").read_text())
    timing = {"train_seconds": 0.0, "eval_seconds": timing["eval_seconds"], "jobs": jobs}
    return record(Path(results_root) / name, name, profile, params, metrics, timing, extra={"posthoc": dict(spec)})


def summary(metrics: dict) -> dict:
    """{bbox: {AP, AP50, APr, APc, APf, AR}, segm: {...}} rounded to 4 digits (the DVC metric)."""
    return {t: {k: round(float(metrics[t]["metrics"][k]), 4) for k in SUMMARY_KEYS}
            for t in ("bbox", "segm") if t in metrics}


def loss_curve(path: str | Path, points: int = LOSS_POINTS) -> dict:
    """losses.jsonl -> {iteration: [...], lr: [...], loss: [...], loss_*: [...]}: means over consecutive
    windows of ceil(n / points) iterations (iteration: the window's last), so the file stays small."""
    from rog.engine.trainer import read_log

    records = [record for _, record in read_log(Path(path))]
    if not records:
        return {"iteration": []}
    keys = [k for k in records[0] if k == "lr" or k.startswith("loss")]
    size = -(-len(records) // points)
    out: dict = {"iteration": [], **{k: [] for k in keys}}
    for start in range(0, len(records), size):
        window = records[start:start + size]
        out["iteration"].append(int(window[-1]["iteration"]))
        for k in keys:
            out[k].append(sum(float(r[k]) for r in window) / len(window))
    return out


def _dump(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def record(out: Path, name: str, profile: str, params: dict, metrics: dict, timing: dict,
           diagnostics: Path | None = None, extra: dict | None = None) -> dict:
    """Write metrics.json (metrics + "run", timings included), summary.json (no timings) and a copy of
    diagnostics.json; seconds rounded to 0.01 s. Returns the metrics.json dict."""
    metrics = dict(metrics)
    metrics["run"] = {"name": name, "profile": profile,
                      "iterations": int(params["train"]["iterations"]), "seed": int(params["train"]["seed"]),
                      "objective": params["model"]["objective"], "ranking": params["model"]["ranking"],
                      "sampler": params["dataset"]["sampler"]["kind"],
                      **{k: round(float(v), 2) for k, v in timing.items() if k.endswith("_seconds")},
                      "jobs": int(timing["jobs"]), **(extra or {})}
    _dump(out / "metrics.json", metrics)
    _dump(out / "summary.json", summary(metrics))
    if diagnostics is not None:
        shutil.copyfile(diagnostics, out / "diagnostics.json")
    return metrics

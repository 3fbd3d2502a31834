"""dvc.yaml, generated from params.yaml's registry (`python -m rog report pipeline [--check]`).

Why generated: a table's stage must depend on exactly the metrics files of the runs it reads (so that
changing one experiment reruns only it and its tables), and DVC cannot template a list into `deps`.
Experiments and post-hoc evaluations stay `foreach` stages over the registry, so a new experiment
entry needs no regeneration; a new table row does (the test suite checks dvc.yaml is current).

Stages (papermill runs of notebooks/ unless said otherwise; executed copies in results/notebooks/,
volatile metadata stripped by `python -m rog.pipeline.notebooks`):

    dataset                 `rog dataset`: LT-Glyphs for ${profile} -> out/pipeline/<profile>/dataset (DVC cache)
    pretrain                `rog pretrain`: the detector pretrained on glyphs disjoint from LT-Glyphs'
                            classes -> out/pipeline/<profile>/pretrain/detector.pt (DVC cache); a stage, and
                            a dependency of the experiment and post-hoc stages, only when an experiment of
                            the profile sets model.weights: pretrain (`uses_pretraining`)
    experiment@NAME         `rog train` (torchrun when train.processes > 1) and `rog evaluate`, launched by
                            rog.pipeline.stage -> results/experiments/NAME/{metrics,summary,diagnostics,curve,
                            losses}.json (git); the run folder out/pipeline/<profile>/runs/NAME/ (checkpoints)
                            is a by-product, not a DVC output: see below. Depends on the code that changes
                            numbers (what `rog train` / `rog evaluate` import), never on rog/report
    posthoc@NAME            `rog evaluate --experiment NAME`: a trained checkpoint scored with NorCal ->
                            results/experiments/NAME/
    run@NAME                the reader's view of one experiment (losses, metrics, learning curve, rare
                            objects, drawn detections), from its results files only: editing it retrains nothing
    lookalike               rare glyphs and their look-alikes, sigmoid CE vs + GAP (rog.report.lookalike),
                            from the pair's lookalike.json and detections.json

Why checkpoints are not DVC outputs: the default pipeline takes longer than a machine may stay up,
and its results reach git (results/, dvc.lock) in parts. A 44 MB checkpoint per run cannot go to git,
so a fresh clone lacks it, and DVC would call every finished experiment changed ("deleted" output) and
train it again. With the metrics files as the only outputs, a clone that holds results/ and dvc.lock
resumes with just the missing runs. A post-hoc stage depends on its source's metrics.json and reads the
checkpoint from the run folder; where that is gone it says how to get it back (the run is
deterministic: `dvc repro -f -s experiment@SOURCE` retrains it with the same metrics).
    dataset_notebook, gap_loss, TABLE/FIGURE, overview   the narrative, reading results files only

Code dependencies are derived, never listed: a stage's `deps` start with the notebooks its commands run
and every file of rog/ that those commands import, directly or not, inside functions too, or read beside
a module (rog.pipeline.imports.stage_code; a folder stands for all its files). Data and results files
follow. tests/test_pipeline.py checks that each stage's deps cover what its commands import.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from rog.paths import FRESHNESS_FILE
from rog.paths import PRETRAIN as PRETRAIN_WEIGHTS
from rog.pipeline.imports import covered, stage_code
from rog.pipeline.registry import (RegistryError, curve_path, diagnostics_path, metrics_path, pair_runs, question,
                                   run_names, sections, table_runs, validate)

HEADER = ("# Generated from params.yaml by `python -m rog report pipeline`: edit params.yaml (experiments,\n"
          "# posthoc, tables, figures), then regenerate. tests/test_pipeline.py checks this file is current.\n")
PAPERMILL = "papermill {src} {dst} -k python3 --cwd . --no-progress-bar --execution-timeout 7200"
STRIP = "python -m rog.pipeline.notebooks {dst}"
DATASET = "out/pipeline/${profile}/dataset"
PRETRAIN = "out/pipeline/${profile}/pretrain"  # rog.paths.PRETRAIN_DIR
RUNS = "out/pipeline/${profile}/runs"
ROOT = Path(__file__).resolve().parents[2]  # the repository: stages' code paths are relative to it
FIDELITY_BASELINES = Path("rog/report/lvis_v1_statistics.yaml")
FIDELITY_TABLE = "results/tables/fidelity.md"  # the dataset page writes it, the overview shows it
RUN_OUTPUTS = ("metrics.json", "diagnostics.json", "curve.json", "losses.json", "lookalike.json", "detections.json")


def _notebook_cmd(name: str, dst: str, params: dict[str, str] | None = None, folders: tuple[str, ...] = ()
                  ) -> list[str]:
    folder = " ".join([str(Path(dst).parent), *folders])
    run = PAPERMILL.format(src=f"notebooks/{name}.ipynb", dst=dst)
    for key, value in (params or {}).items():
        run += f" -p {key} {value}"
    return [f"mkdir -p {folder}", run, STRIP.format(dst=dst)]


def stage(cmd: str | list[str], inputs: list[str] = (), **fields) -> dict:
    """One stage: `cmd`, its deps (the code its commands run, derived from their imports by
    rog.pipeline.imports.stage_code, then `inputs`: data and results files), and the other `fields`."""
    return {"cmd": cmd, "deps": stage_code(cmd, ROOT) + list(inputs), **fields}


def stages(params: dict) -> dict:
    """The `stages` mapping of dvc.yaml for `params` (validated first). Every stage's code dependencies are
    derived from what its commands import (`stage`): no list of code is kept by hand."""
    validate(params)
    out: dict = {}
    out["dataset"] = stage(f"python -m rog dataset --profile ${{profile}} --out {DATASET} --no-progress", ["data"],
                           params=["dataset", "profiles.${profile}"], outs=[DATASET])
    weights = []
    if uses_pretraining(params):  # a stage only when a run reads it: pretraining costs minutes
        out["pretrain"] = stage(f"python -m rog pretrain --profile ${{profile}} --out {PRETRAIN} --no-progress",
                                ["data/fonts"], params=["pretrain", "dataset", "model", "train", "profiles.${profile}"],
                                outs=[PRETRAIN])
        weights = [PRETRAIN]
    out["dataset_notebook"] = stage(
        _notebook_cmd("dataset", "results/notebooks/dataset.ipynb", {"profile": "${profile}", "dataset_root": DATASET}),
        [DATASET, FRESHNESS_FILE, *[str(metrics_path(r)) for r in fidelity_runs(params)]],
        params=["profile", "dataset", "model", "train", "profiles", "tables.table1"],
        outs=[{"results/notebooks/dataset.ipynb": {"cache": False}}, {FIDELITY_TABLE: {"cache": False}}])
    out["gap_loss"] = stage(_notebook_cmd("gap_loss", "results/notebooks/gap_loss.ipynb"),
                            outs=[{"results/notebooks/gap_loss.ipynb": {"cache": False}}])
    if params.get("experiments"):
        out["experiment"] = {"foreach": "${experiments}", "do": _run_stage("experiment", [DATASET, *weights], [
            "dataset", "model", "train", "evaluate", "schedule", "profiles.${profile}", "experiments.${key}"], train=True)}
        out["run"] = {"foreach": "${experiments}", "do": stage(
            _notebook_cmd("run", "results/notebooks/run/${key}.ipynb", {"name": "${key}"}),
            [f"results/experiments/${{key}}/{f}" for f in ("metrics.json", "curve.json", "losses.json", "lookalike.json",
                                                           "detections.json")],
            outs=[{"results/notebooks/run/${key}.ipynb": {"cache": False}}])}
    if params.get("posthoc"):
        out["posthoc"] = {"foreach": "${posthoc}", "do": _run_stage("posthoc", [
            DATASET, *weights, "results/experiments/${item.source}/metrics.json"], ["evaluate", "posthoc.${key}"],
            train=False)}
    # whether each run was made with today's params, decided once for every page (rog.pipeline.freshness)
    out["freshness"] = stage("python -m rog report freshness",
                             [*weights, *[str(metrics_path(r)) for r in run_names(params)]],
                             params=[k for k in ("dataset", "model", "train", "evaluate", "schedule", "pretrain",
                                                 "profiles", "profile", "experiments", "posthoc") if k in params],
                             outs=[{FRESHNESS_FILE: {"cache": False}}])
    for name, section in sections(params).items():
        kind = "figures" if name in (params.get("figures") or {}) else "tables"
        inputs = [FRESHNESS_FILE]
        reads_diagnostics = section.get("diagnostics", kind == "figures")
        for run in table_runs(params, name):
            inputs.append(str(metrics_path(run)))
            if reads_diagnostics:
                inputs.append(str(diagnostics_path(run)))
            if section.get("curves", False):
                inputs.append(str(curve_path(run)))
        outs = [{f"results/notebooks/{name}.ipynb": {"cache": False}}, {f"results/tables/{name}.md": {"cache": False}}]
        drawn = section.get("figure", kind == "figures")  # a table's page may draw a figure too
        if drawn:
            outs.append({f"results/figures/{name}.png": {"cache": False}})
        cmd = _notebook_cmd(name, f"results/notebooks/{name}.ipynb", {"name": name},
                            ("results/tables", "results/figures") if drawn else ("results/tables",))
        out[name] = stage(cmd, inputs, params=[f"{kind}.{name}", "profile"], outs=outs)
    pair = lookalike_runs(params)
    if pair:  # the look-alike page: sigmoid CE vs + GAP (table1's headline rows) when both are run
        out["lookalike"] = stage(
            _notebook_cmd("lookalike", "results/notebooks/lookalike.ipynb", folders=("results/tables", "results/figures")),
            [f"results/experiments/{run}/lookalike.json" for runs in pair.values() for run in runs]
            + [f"results/experiments/{runs[0]}/detections.json" for runs in pair.values()],
            params=["tables.table1", "profile", "questions.lookalike"],
            outs=[{f"results/{path}": {"cache": False}} for path in (
                "notebooks/lookalike.ipynb", "tables/lookalike.md", "figures/lookalike.png",
                "figures/lookalike_detections.png")])
    out["overview"] = stage(
        _notebook_cmd("overview", "results/notebooks/overview.ipynb"),
        # every run's metrics.json: the overview shows their provenance (rog.report.provenance_table)
        [FRESHNESS_FILE] + [str(metrics_path(run)) for run in run_names(params)]
        # the gradient balance the EQLv2 question compares (questions.eqlv2.diagnostics)
        + [str(diagnostics_path(run)) for run in question(params, "eqlv2_below_ce").get("diagnostics", {}).values()
           if run in (params.get("experiments") or {})]
        # the look-alike result in one sentence (rog.report.lookalike.answer): its page's table,
        # written from the same lookalike.json files, orders the stages
        + (["results/tables/lookalike.md"] if pair else [])
        + [f"results/tables/{name}.md" for name in sections(params)] + [FIDELITY_TABLE],
        params=["profile", "questions"], outs=[{"results/notebooks/overview.ipynb": {"cache": False}}])
    return out


def lookalike_runs(params: dict) -> dict[str, list[str]]:
    """The look-alike page's runs (rog.pipeline.registry.pair_runs), {} unless both models have runs."""
    pair = pair_runs(params)
    return pair if all(pair.values()) else {}


def fidelity_runs(params: dict) -> list[str]:
    """The runs of the Table 1 rows that the fidelity table reads (FIDELITY_BASELINES), in registry order."""
    rows = {b["row"] for b in yaml.safe_load((ROOT / FIDELITY_BASELINES).read_text())["baselines"]}
    runs = [r for entry in (params.get("tables") or {}).get("table1", {}).get("rows", []) if entry["paper"] in rows
            for r in entry["runs"]]
    return [r for r in run_names(params) if r in runs]


def uses_pretraining(params: dict) -> bool:
    """Whether an experiment of the pipeline's profile sets model.weights: pretrain."""
    from rog.config import resolve_run

    profile = params.get("profile")
    return any(resolve_run(params, profile, name, weights=PRETRAIN_WEIGHTS)["model"].get("weights") == PRETRAIN_WEIGHTS
               for name in params.get("experiments") or {})


def _run_stage(kind: str, inputs: list[str], tracked: list[str], train: bool) -> dict:
    dst = f"results/notebooks/{kind}/${{key}}.ipynb"
    cmd = _notebook_cmd(kind, dst, {"name": "${key}", "profile": "${profile}", "dataset_root": DATASET,
                                    "runs_root": RUNS})
    files = RUN_OUTPUTS if train else ("metrics.json",)
    outs: list = [{dst: {"cache": False}}] + [{f"results/experiments/${{key}}/{f}": {"cache": False}} for f in files]
    return stage(cmd, inputs, params=tracked, outs=outs,
                 metrics=[{"results/experiments/${key}/summary.json": {"cache": False}}])


def missing_code(dvc_stages: dict, root: str | Path = ROOT) -> dict[str, list[str]]:
    """{stage: [files]} of the code a stage's commands run (stage_code, read from the package under `root`)
    that its deps do not cover; {} when every stage of `dvc_stages` (dvc.yaml's `stages`) is complete."""
    out = {}
    for name, spec in dvc_stages.items():
        spec = spec.get("do", spec)
        deps = spec.get("deps") or []
        missing = [f for f in stage_code(spec["cmd"], root) if not covered(f, deps)]
        if missing:
            out[name] = missing
    return out


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True


def render(params: dict) -> str:
    """dvc.yaml's text for `params`."""
    body = yaml.dump({"stages": stages(params)}, Dumper=_NoAliases, sort_keys=False, default_flow_style=False,
                     width=1000)
    return HEADER + body


def write(params_path: str | Path = "params.yaml", dvc_yaml: str | Path = "dvc.yaml", check: bool = False) -> bool:
    """Write dvc.yaml (or with check=True only compare); returns True when it was already current."""
    from rog.pipeline.registry import read_params

    text = render(read_params(params_path))
    path = Path(dvc_yaml)
    current = path.is_file() and path.read_text() == text
    if not check and not current:
        path.write_text(text)
    return current


__all__ = ["render", "stages", "write", "RegistryError"]

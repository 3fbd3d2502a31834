"""The whole DVC pipeline on the smoke profile, in a copy of the repository (rog.pipeline.smoke), then
nbval on the executed notebooks. Slow by nature (about 5 minutes on 2 cores): one module-scoped run.

Checks: `dvc repro` runs end to end; right after, `dvc status` is clean and a second `dvc repro` runs
nothing; executed notebooks carry no volatile metadata; `dvc exp run -S` of one post-hoc entry reruns
only it and the tables reading it, and `dvc params diff` / `dvc metrics diff` work; nbval re-executes
every narrative notebook (tables, figures, dataset, GAP explained, overview) and finds the same outputs.
Experiment notebooks are not re-executed by nbval (that would retrain): papermill ran them in the
pipeline, which fails on any error. Every executed notebook, rendered to HTML (`make html`), opens in
headless Chromium with its figures (tests/html_browser.py).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rog.pipeline import smoke
from rog.pipeline.registry import read_params

ROOT = Path(__file__).resolve().parents[1]
NARRATIVE = ("dataset", "gap_loss", "table1", "table2", "table3", "table4", "table5", "table6", "sweeps",
             "figure4", "figure5", "convergence", "lookalike", "overview", "run/sigmoid_ce")


def dvc(copy: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = smoke.run([sys.executable, "-m", "dvc", *args], copy, check=False)
    if check and result.returncode:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    copy = smoke.prepare(ROOT, tmp_path_factory.mktemp("smoke") / "repo")
    seconds = smoke.repro(copy)
    print(f"\nsmoke pipeline: dvc repro took {seconds:.0f} s")
    return copy


def test_smoke_pipeline_runs_end_to_end(pipeline):
    params = read_params(pipeline / "params.yaml")
    assert params["profile"] == "smoke"
    for run in [*params["experiments"], *params["posthoc"]]:
        metrics = json.loads((pipeline / f"results/experiments/{run}/metrics.json").read_text())
        assert metrics["run"]["profile"] == "smoke" and "bbox" in metrics and "segm" in metrics
        assert set(json.loads((pipeline / f"results/experiments/{run}/summary.json").read_text())) == {"bbox", "segm"}
    for run in params["experiments"]:
        assert (pipeline / f"out/pipeline/smoke/runs/{run}/model_final.pt").is_file()
        for name in ("diagnostics.json", "curve.json", "losses.json", "lookalike.json", "detections.json"):
            assert (pipeline / f"results/experiments/{run}/{name}").is_file(), (run, name)
        # rog evaluate's look-alike analysis and the drawn sample, whose images the pages read
        analysis = json.loads((pipeline / f"results/experiments/{run}/lookalike.json").read_text())
        assert analysis["counts"]["instances"] > 0 and "IoU >= 0.5" in analysis["lookalike_definition"]
        sample = json.loads((pipeline / f"results/experiments/{run}/detections.json").read_text())
        assert len(sample["images"]) == 4
        assert all((pipeline / sample["image_root"] / img["file_name"]).is_file() for img in sample["images"])
        # trained by the CLI: the stage's notebook shows the `rog train` and `rog evaluate` it launched
        launched = (pipeline / f"results/notebooks/experiment/{run}.ipynb").read_text()
        assert f"rog train --params params.yaml --profile smoke --experiment {run}" in launched
        assert "rog evaluate --params params.yaml" in launched
    for name in NARRATIVE:
        nb = json.loads((pipeline / f"results/notebooks/{name}.ipynb").read_text())
        assert "papermill" not in nb["metadata"], name
        assert all("papermill" not in c["metadata"] and "execution" not in c["metadata"] for c in nb["cells"])
        errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, name
    for name in ("table1", "table3", "figure4", "figure5", "sweeps"):
        text = (pipeline / f"results/tables/{name}.md").read_text()
        assert "smoke profile" in text or name.startswith("table3"), name
    assert "| Random, Sigmoid CE | sigmoid_ce |" in (pipeline / "results/tables/table1.md").read_text()
    assert (pipeline / "results/figures/figure5.png").stat().st_size > 1000
    # the run page and the look-alike page hold their figures (losses, drawn detections; rates, GT / CE / CE + GAP)
    for name, least in (("run/sigmoid_ce", 2), ("lookalike", 2)):
        nb = json.loads((pipeline / f"results/notebooks/{name}.ipynb").read_text())
        pngs = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(pngs) >= least, name
    assert (pipeline / "results/figures/lookalike_detections.png").stat().st_size > 1000
    assert "appears with the re-run" not in (pipeline / "results/tables/lookalike.md").read_text()
    # results go to git (dvc.lock records them); checkpoints are by-products, not DVC outputs
    lock = (pipeline / "dvc.lock").read_text()
    assert "results/experiments/sigmoid_ce/metrics.json" in lock and "model_final.pt" not in lock


def test_overview_finds_every_smoke_run_made_with_todays_params(pipeline):
    """The overview's regime check (checkpoint params hash against params.yaml's) on runs the pipeline made."""
    from rog.report import overview, regime

    params = read_params(pipeline / "params.yaml")
    found = regime.regime(params, pipeline)
    assert sorted(found["runs"]) == sorted([*params["experiments"], *params["posthoc"]])
    assert found["same"] == found["runs"], found
    page = overview.build(pipeline, params)
    assert len(page.figures) >= 2 and max(len(head) for head in page.tables()) <= overview.MAX_COLUMNS
    assert "**Out-ranked by look-alikes? " in page.markdown()  # the look-alike result, answered
    assert page.prose_words() < overview.MAX_WORDS and page.markdown().startswith("**The question.**")


def test_nothing_to_do_right_after(pipeline):
    assert dvc(pipeline, "status", "-q", check=False).returncode == 0, dvc(pipeline, "status", check=False).stdout
    again = dvc(pipeline, "repro")
    assert not ran_stages(again.stdout), again.stdout


def test_dvc_exp_run_reruns_only_the_changed_run_and_its_tables(pipeline):
    smoke.run(["git", "add", "-A"], pipeline)
    smoke.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "smoke results"],
              pipeline)
    start = time.perf_counter()
    out = dvc(pipeline, "exp", "run", "-S", "posthoc.softmax_ce_norcal.norcal_gamma=0.5")
    ran = ran_stages(out.stdout)
    print(f"\ndvc exp run -S: {time.perf_counter() - start:.0f} s, stages {sorted(ran)}")
    # freshness reads every run's metrics.json (cheap); the pages that show the changed run re-run, no others
    assert {"posthoc@softmax_ce_norcal", "table1", "freshness"} <= ran <= \
        {"posthoc@softmax_ce_norcal", "table1", "freshness", "overview"}
    params = dvc(pipeline, "params", "diff", "--json")
    assert "posthoc.softmax_ce_norcal.norcal_gamma" in params.stdout
    metrics = json.loads((pipeline / "results/experiments/softmax_ce_norcal/metrics.json").read_text())
    assert metrics["run"]["posthoc"]["norcal_gamma"] == 0.5
    assert dvc(pipeline, "metrics", "diff", "--json").returncode == 0
    assert dvc(pipeline, "status", "-q", check=False).returncode == 0


def test_nbval_on_the_executed_notebooks(pipeline):
    paths = [f"results/notebooks/{name}.ipynb" for name in NARRATIVE]
    start = time.perf_counter()
    result = smoke.run([sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
                        "-p", "no:cacheprovider", "--nbval-cell-timeout", "600", *paths], pipeline, check=False)
    print(f"\nnbval: {time.perf_counter() - start:.0f} s")
    assert result.returncode == 0, result.stdout[-8000:]


def test_html_of_the_executed_notebooks_opens_in_chromium(pipeline, tmp_path):
    from html_browser import check_site, chromium
    from rog.report import html

    start = time.perf_counter()
    pages = html.build(pipeline / "results" / "notebooks", tmp_path / "html")
    built = time.perf_counter()
    with chromium() as driver:
        problems = check_site(driver, tmp_path / "html", pages)
    print(f"\nhtml: {len(pages)} pages built in {built - start:.0f} s, opened in Chromium in "
          f"{time.perf_counter() - built:.0f} s")
    assert not problems, "\n".join(problems)
    by_name = {page.source.with_suffix("").as_posix(): page for page in pages}
    assert {f"experiment/{run}" for run in read_params(pipeline / "params.yaml")["experiments"]} <= set(by_name)
    # the notebooks that draw figures hold them (an MPLBACKEND in the kernel's environment drops them)
    drawn = [name for name in ("dataset", "gap_loss", "figure4", "figure5", "convergence", "run/sigmoid_ce",
                                           "lookalike", "overview")
             if by_name[name].images < 1]
    assert not drawn, f"pages without a figure: {drawn}"


def changed_stages(copy: Path) -> set[str]:
    return {line.strip().rstrip(":") for line in dvc(copy, "status", check=False).stdout.splitlines()
            if line.strip().endswith(":") and not line.startswith((" ", "\t"))}


def test_editing_presentation_reruns_no_training_stage(pipeline):
    """A table notebook, the report code (tables, claims, pages) and a run's view are presentation: DVC
    calls only presentation stages changed. The engine changes numbers: every experiment is changed."""
    edited = ["notebooks/table1.ipynb", "rog/report/tables.py", "rog/report/claims.py", "notebooks/run.ipynb"]
    try:
        for rel in edited:
            with open(pipeline / rel, "a") as f:
                f.write("\n")
        changed = changed_stages(pipeline)
        assert "table1" in changed and "run@sigmoid_ce" in changed
        assert not [s for s in changed if s.startswith(("experiment@", "posthoc@")) or s in ("dataset", "pretrain")], changed
        with open(pipeline / "rog/engine/trainer.py", "a") as f:
            f.write("\n")
        edited.append("rog/engine/trainer.py")
        assert {f"experiment@{run}" for run in read_params(pipeline / "params.yaml")["experiments"]} <= \
            changed_stages(pipeline)
    finally:
        smoke.run(["git", "checkout", "--", *edited], pipeline)
    assert dvc(pipeline, "status", "-q", check=False).returncode == 0


def test_a_clone_with_results_and_lock_but_no_checkpoints_is_up_to_date(pipeline):
    """What a fresh clone of a part-finished run holds: results/ and dvc.lock, no out/ (checkpoints, the
    rendered dataset, the pretrained detector). Rendering the dataset and pretraining again (`make data`; both
    byte-identical, tests/test_pretrain.py) leaves nothing to retrain."""
    shutil.rmtree(pipeline / "out")
    dvc(pipeline, "repro", "dataset")
    dvc(pipeline, "repro", "pretrain")  # the smoke subset starts from a pretrained detector
    status = dvc(pipeline, "status", check=False)
    assert dvc(pipeline, "status", "-q", check=False).returncode == 0, status.stdout

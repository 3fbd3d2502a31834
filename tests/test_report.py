"""rog.report: the registry, dvc.yaml generation, notebook stripping, tables beside the paper, claims,
figures' balance numbers and the Figure 3 toy example (fast; the pipeline itself: test_pipeline_smoke)."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from rog.report import figures, notebooks, pipeline, registry, tables, toy
from rog.report.experiment import prepare_run_dir, summary
from rog.report.results import aggregate, paper_numbers, value

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return registry.read_params(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def paper():
    return paper_numbers()


# ---- registry -----------------------------------------------------------------------------------------
def test_registry_is_consistent_with_itself_and_the_paper_numbers(params, paper):
    registry.validate(params, paper)
    assert params["profile"] == "default"


def test_every_experiment_resolves_on_every_pipeline_profile(params):
    for name in params["experiments"]:
        for profile in ("default", "smoke"):
            p = registry.experiment_params(ROOT / "params.yaml", profile, name)
            assert set(p) == set(registry.RUN_SECTIONS)


def test_the_paper_is_covered(params):
    exps = params["experiments"]
    # headline rows: 3 seeds each, differing only by seed
    for base in ("sigmoid_ce", "sigmoid_ce_gap", "rfs_sigmoid_ce", "rfs_sigmoid_ce_gap"):
        seeds = [exps[n].get("train", {}).get("seed", 0) for n in (base, f"{base}_seed1", f"{base}_seed2")]
        assert seeds == [0, 1, 2]
        strip = lambda o: {k: v for k, v in o.items() if k != "train"}  # noqa: E731
        assert strip(exps[f"{base}_seed1"]) == strip(exps[base])
    # lambda 1.0 without RFS, 0.1 with RFS, as the paper, unless the run's name says its lambda
    for name, overlay in exps.items():
        gap = overlay.get("model", {}).get("gap", {})
        rfs = overlay.get("dataset", {}).get("sampler", {}).get("kind") == "repeat_factor"
        if gap.get("enabled") and "lambda" not in name:
            assert gap.get("loss_weight", 1.0) == (0.1 if rfs else 1.0), name
    assert exps["seesaw_rfs_gap_2x"]["schedule"]["length"] == 2.0
    assert set(params["tables"]) == {"table1", "table2", "table3", "table4", "table5", "table6", "sweeps"}
    assert set(params["figures"]) == {"figure4", "figure5", "convergence"}
    # the convergence check: the headline runs on a 2x schedule, nothing else changed but the kept curve
    for base in ("sigmoid_ce", "sigmoid_ce_gap"):
        long = exps[f"{base}_2x"]
        assert long["schedule"] == {"length": 2.0} and long["evaluate"] == {"curve": True}
        assert {k: v for k, v in long.items() if k not in ("schedule", "train", "evaluate")} == exps[base]
        p = registry.experiment_params(ROOT / "params.yaml", "default", f"{base}_2x")["train"]
        assert 6 <= p["iterations"] // p["keep_every"] <= 8  # kept checkpoints, the final model included
    assert params["posthoc"]["softmax_ce_norcal"]["source"] == "softmax_ce"


def test_validate_names_the_problem(params, paper):
    bad = copy.deepcopy(params)
    bad["tables"]["table1"]["rows"][0]["runs"].append("no_such_run")
    with pytest.raises(registry.RegistryError, match="no_such_run"):
        registry.validate(bad)
    bad = copy.deepcopy(params)
    bad["experiments"]["gap_delta_0.3"] = {}
    with pytest.raises(registry.RegistryError, match="gap_delta_0.3"):
        registry.validate(bad)
    bad = copy.deepcopy(params)
    bad["posthoc"]["x"] = {"source": "nope"}
    with pytest.raises(registry.RegistryError, match="nope"):
        registry.validate(bad)
    bad = copy.deepcopy(params)
    bad["tables"]["table4"]["rows"][0]["paper"] = "omega/never"
    with pytest.raises(registry.RegistryError, match="omega/never"):
        registry.validate(bad, paper)


def test_schedule_length_scales_iterations(tmp_path, params):
    p = copy.deepcopy(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    one = registry.experiment_params(path, "smoke", "seesaw")
    two = registry.experiment_params(path, "smoke", "seesaw_rfs_2x")
    assert two["train"]["iterations"] == 2 * one["train"]["iterations"]
    assert two["dataset"]["sampler"]["kind"] == "repeat_factor"
    p["experiments"]["bad"] = {"schedule": {"length": 0}}
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(registry.ParamsError, match="schedule.length = 0"):  # the schema (rog/schema.py)
        registry.experiment_params(path, "smoke", "bad")


def test_subset_params_keep_only_the_subset_runs(params):
    smoke = registry.subset_params(params, "smoke")
    spec = params["subsets"]["smoke"]
    assert smoke["profile"] == "smoke"
    assert list(smoke["experiments"]) == spec["experiments"] and list(smoke["posthoc"]) == spec["posthoc"]
    registry.validate(smoke)
    row = smoke["tables"]["table1"]["rows"][0]
    assert row["runs"] == ["sigmoid_ce"] and row["skipped"] == ["sigmoid_ce_seed1", "sigmoid_ce_seed2"]
    assert params["tables"]["table1"]["rows"][0].get("skipped") is None  # the input is not modified
    quick = registry.subset_params(params, "quick")
    assert quick["profile"] == "default" and "rfs_sigmoid_ce_gap" in quick["experiments"]
    with pytest.raises(registry.RegistryError, match="no subset"):
        registry.subset_params(params, "nope")
    bad = copy.deepcopy(params)
    bad["subsets"]["smoke"]["experiments"] = ["sigmoid_ce"]  # its posthoc's source is gone
    with pytest.raises(registry.RegistryError, match="softmax_ce"):
        registry.validate(bad)


# ---- dvc.yaml ---------------------------------------------------------------------------------------
def test_dvc_yaml_is_generated_from_params(params):
    assert (ROOT / "dvc.yaml").read_text() == pipeline.render(params), \
        "dvc.yaml is stale: run `python -m rog report pipeline`"


def test_table_stages_depend_on_metrics_files_never_on_notebooks(params):
    stages = pipeline.stages(params)
    for name in registry.sections(params):
        deps = stages[name]["deps"]
        runs = registry.table_runs(params, name)
        reads_diagnostics = name.startswith("figure") or name == "table2"  # table2: gradient totals
        reads_curves = name == "convergence"
        assert {d for d in deps if d.startswith("results/")} == \
            {f"results/experiments/{r}/metrics.json" for r in runs} | \
            ({f"results/experiments/{r}/diagnostics.json" for r in runs} if reads_diagnostics else set()) | \
            ({f"results/experiments/{r}/curve.json" for r in runs} if reads_curves else set())
        assert not any(d.endswith(".ipynb") and d.startswith("results/") for d in deps)
    do = stages["experiment"]["do"]
    assert "experiments.${key}" in do["params"]
    # results go to git; checkpoints are no DVC output, so a clone with results/ and dvc.lock resumes
    assert all(list(o.values())[0] == {"cache": False} for o in do["outs"])
    assert not any("out/pipeline" in str(o) for o in do["outs"])
    assert {"results/experiments/${key}/curve.json": {"cache": False}} in do["outs"]  # convergence reads it
    assert "results/experiments/${item.source}/metrics.json" in stages["posthoc"]["do"]["deps"]
    assert stages["overview"]["deps"][-1].startswith("results/tables/")


def test_dvc_yaml_parses_with_dvc(tmp_path, params):
    """DVC itself expands the foreach stages (run in a scratch git repo)."""
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(registry.subset_params(params, "smoke")))
    (tmp_path / "dvc.yaml").write_text(pipeline.render(registry.subset_params(params, "smoke")))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    out = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split()
    assert "experiment@sigmoid_ce_gap" in out and "posthoc@softmax_ce_norcal" in out and "table3" in out
    assert "experiment@eqlv2" not in out


# ---- notebooks -------------------------------------------------------------------------------------
def test_strip_removes_volatile_metadata_and_keeps_outputs():
    nb = {"metadata": {"papermill": {"start_time": "x"}, "kernelspec": {"name": "python3"}},
          "cells": [{"id": "abc", "cell_type": "code", "metadata": {"papermill": {"duration": 1.2},
                                                                    "execution": {"t": 1}, "tags": ["p"]},
                     "outputs": [{"output_type": "stream", "text": "7\n"}], "source": "print(7)"},
                    {"id": "rnd9", "cell_type": "markdown", "metadata": {}, "source": "x"}]}
    out = notebooks.strip(nb)
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert out["cells"][0]["metadata"] == {"tags": ["p"]} and out["cells"][0]["outputs"] == nb["cells"][0]["outputs"]
    assert [c["id"] for c in out["cells"]] == ["0", "1"]
    assert nb["cells"][0]["id"] == "abc"  # input untouched


def test_source_notebooks_are_output_free_with_a_parameters_cell():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        assert "enter_project_root" in "".join(code[0]["source"]), path.name
        if path.stem not in ("overview", "gap_loss"):
            assert any("parameters" in c["metadata"].get("tags", []) for c in code), path.name


def test_project_root_walks_up(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert notebooks.project_root(tmp_path / "a" / "b") == tmp_path.resolve()
    with pytest.raises(FileNotFoundError):
        notebooks.project_root(Path("/"))


# ---- results and tables -------------------------------------------------------------------------------
def fake_metrics(ap: float, apr: float, groups=(0.1, 0.2, 0.3, 0.4, 0.5), sweep=None) -> dict:
    def iou():
        m = {"AP": ap, "AP50": ap, "APr": apr, "APc": ap, "APf": ap, "AR": ap, "APs": ap, "APm": -1.0, "APl": -1.0,
             "AP75": ap}
        return {"metrics": m, "frequency_groups": [{"group": i + 1, "AP": g} for i, g in enumerate(groups)],
                "max_dets_sweep": {str(k): {"metrics": {"APr": r, "APc": c, "APf": f}, "saturated": False}
                                   for k, (r, c, f) in (sweep or {}).items()},
                "per_category": [{"id": 1, "AP": apr}, {"id": 2, "AP": ap}]}
    return {"bbox": iou(), "segm": iou(), "run": {"profile": "default"}}


def write_run(root: Path, name: str, metrics: dict) -> None:
    path = registry.metrics_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))


def test_value_reads_paths_in_percent():
    m = fake_metrics(0.25, 0.1, sweep={100: (0.05, 0.2, 0.3)})
    assert value(m, "bbox.AP") == pytest.approx(25.0)
    assert value(m, "segm.group1") == pytest.approx(10.0)
    assert value(m, "segm.K100.APr") == pytest.approx(5.0)
    assert value(m, "bbox.APm") is None          # LVIS's -1
    assert value(m, "bbox.K300.APr") is None and value(None, "bbox.AP") is None
    with pytest.raises(ValueError):
        value(m, "box.AP")


def test_aggregate_mean_and_sample_sd():
    assert aggregate([1.0, 2.0, 3.0, None]) == (2.0, 1.0, 3)
    assert aggregate([4.0]) == (4.0, None, 1)
    assert aggregate([None]) == (None, None, 0)


def test_table1_puts_ours_beside_the_paper_and_judges_claims(tmp_path, params, paper):
    for seed, (ap, apr) in enumerate([(0.20, 0.01), (0.21, 0.02), (0.19, 0.00)]):
        write_run(tmp_path, "sigmoid_ce" + (f"_seed{seed}" if seed else ""), fake_metrics(ap, apr))
    for seed, (ap, apr) in enumerate([(0.25, 0.10), (0.26, 0.12), (0.24, 0.11)]):
        write_run(tmp_path, "sigmoid_ce_gap" + (f"_seed{seed}" if seed else ""), fake_metrics(ap, apr))
    table = tables.build(params, "table1", tmp_path, paper)
    base, gap = table.row("random/sigmoid_ce"), table.row("random/sigmoid_ce+gap")
    assert base.found == ["sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"]
    assert base.ours[0] == pytest.approx(20.0) and base.spread[0] == pytest.approx(1.0)
    assert base.paper == [17.3, 16.7, 0.8, 13.4, 27.4, None, None, None] and gap.ours[2] == pytest.approx(11.0)
    assert table.metrics[5] == "bbox.APr" and gap.ours[5] == pytest.approx(11.0)  # box APr: the claims' metric
    text = tables.markdown(table)
    lines = text.splitlines()
    assert len({line.count("|") for line in lines}) == 1  # every line has the header's columns
    assert "20.0 ± 1.0 | 17.3" in text and "(3 seeds)" in text and "not run" in text
    found = {c["id"]: c for c in tables.claims(params, tmp_path, paper, tables=["table1"])}
    assert found["gap_lifts_apr"]["verdict"] == "reproduced"
    assert found["gap_lifts_apr_rfs"]["verdict"] == "not run"
    assert found["gap_helps_every_objective"]["verdict"] == "reproduced where run"


def test_claims_not_reproduced_when_the_sign_is_wrong_or_within_noise(tmp_path, params, paper):
    write_run(tmp_path, "seesaw_rfs_2x", fake_metrics(0.3, 0.20))
    write_run(tmp_path, "seesaw_rfs_gap_2x", fake_metrics(0.3, 0.15))
    write_run(tmp_path, "eqlv2", fake_metrics(0.3, 0.1, groups=(0.2000, 0.2, 0.3, 0.4, 0.5)))
    write_run(tmp_path, "eqlv2_gap", fake_metrics(0.3, 0.1, groups=(0.2005, 0.2, 0.3, 0.4, 0.5)))
    found = {c["id"]: c for c in tables.claims(params, tmp_path, paper, tables=["table5", "table6"])}
    assert found["seesaw_gap"]["verdict"] == "not reproduced"
    assert found["eqlv2_gap_rarest_group"]["verdict"] == "not reproduced"  # +0.05 AP is below 0.1
    assert "+20.0" not in found["seesaw_gap"]["details"][0] and "-5.0" in found["seesaw_gap"]["details"][0]


def test_table2_rows_without_runs_say_so(tmp_path, params, paper):
    text = tables.markdown(tables.build(params, "table2", tmp_path, paper))
    assert "not registered" in text or all(r["runs"] for r in params["tables"]["table2"]["rows"])
    smoke = registry.subset_params(params, "smoke")
    text = tables.markdown(tables.build(smoke, "table1", tmp_path, paper))
    assert "not run in this profile (eqlv2)" in text


def test_k_sweep_relative_gains_and_claim(tmp_path, params, paper):
    base = {100: (0.02, 0.10, 0.20), 300: (0.04, 0.12, 0.21)}   # rare +100 %, frequent +5 %
    rog = {100: (0.10, 0.15, 0.22), 300: (0.11, 0.17, 0.23)}    # rare +10 %
    for name in ("rfs_sigmoid_ce", "rfs_sigmoid_ce_seed1", "rfs_sigmoid_ce_seed2"):
        write_run(tmp_path, name, fake_metrics(0.2, 0.02, sweep=base))
    for name in ("rfs_sigmoid_ce_gap", "rfs_sigmoid_ce_gap_seed1", "rfs_sigmoid_ce_gap_seed2"):
        write_run(tmp_path, name, fake_metrics(0.2, 0.1, sweep=rog))
    sweep = tables.build_k_sweep(params, tmp_path, paper)
    assert sweep["k"] == [100, 300]
    assert sweep["rows"][0]["gain"][300][0] == pytest.approx(100.0)
    assert sweep["rows"][1]["gain"][300][0] == pytest.approx(10.0)
    assert sweep["rows"][0]["paper_gain"][0] == pytest.approx(100 * (6.7 - 3.9) / 3.9)
    assert tables.k_sweep_claim(sweep).startswith("reproduced")
    assert "+100.0%" in tables.k_sweep_markdown(sweep)
    for name in ("rfs_sigmoid_ce_gap", "rfs_sigmoid_ce_gap_seed1", "rfs_sigmoid_ce_gap_seed2"):
        write_run(tmp_path, name, fake_metrics(0.2, 0.1, sweep={100: (0.01, 0.1, 0.2), 300: (0.03, 0.1, 0.2)}))
    assert tables.k_sweep_claim(tables.build_k_sweep(params, tmp_path, paper)).startswith("not reproduced")
    # a baseline with no rare AP at the smaller K: every rare hit it has needs the larger K
    for name in ("rfs_sigmoid_ce", "rfs_sigmoid_ce_seed1", "rfs_sigmoid_ce_seed2"):
        write_run(tmp_path, name, fake_metrics(0.2, 0.0, sweep={100: (0.0, 0.1, 0.2), 300: (0.02, 0.12, 0.2)}))
    claim = tables.k_sweep_claim(tables.build_k_sweep(params, tmp_path, paper))
    assert claim.startswith("reproduced") and "APr 100%" in claim
    # both rows miss (nearly) all their rare AP at the smaller K: a tie, not the paper's contrast
    for name in ("rfs_sigmoid_ce_gap", "rfs_sigmoid_ce_gap_seed1", "rfs_sigmoid_ce_gap_seed2"):
        write_run(tmp_path, name, fake_metrics(0.2, 0.1, sweep={100: (0.0001, 0.1, 0.2), 300: (0.05, 0.1, 0.2)}))
    assert tables.k_sweep_claim(tables.build_k_sweep(params, tmp_path, paper)).startswith("not reproduced")


def test_summary_is_the_flat_dvc_metric():
    s = summary(fake_metrics(0.123456, 0.05))
    assert s["bbox"] == {"AP": 0.1235, "AP50": 0.1235, "APr": 0.05, "APc": 0.1235, "APf": 0.1235, "AR": 0.1235}


# ---- figures ---------------------------------------------------------------------------------------
def test_balance_is_rare_over_frequent_group_means():
    freq = ["f", "f", "c", "r", "r"]
    assert figures.group_means([4.0, 2.0, 5.0, 1.0, float("nan")], freq) == {"r": 1.0, "c": 5.0, "f": 3.0}
    assert figures.balance([4.0, 2.0, 5.0, 1.0, 2.0], freq) == pytest.approx(0.5)
    assert figures.balance([1.0, 1.0, 1.0], ["f", "c", "c"]) is None
    rows = [{"key": "sigmoid_ce", "balance": 0.2}, {"key": "rog", "balance": 0.8}]
    assert figures.balance_verdict(rows, "sigmoid_ce", "rog", "norms").startswith("reproduced")
    rows = [{"key": "sigmoid_ce", "balance": 0.9}, {"key": "rog", "balance": 3.0}]
    assert figures.balance_verdict(rows, "sigmoid_ce", "rog", "norms").startswith("not reproduced")


def test_figure_series_read_diagnostics(tmp_path, params):
    diag = {"num_classes": 3, "category_ids": [1, 2, 3], "frequency": ["r", "c", "f"],
            "classifier_weight_norm": [0.5, 1.0, 2.0],
            "gradients": {"objective": {"positive": [1, 1, 1], "negative": [10, 5, 1], "ratio": [0.1, 0.2, 1.0]},
                          "gap": {"positive": [0, 0, 0], "negative": [0, 0, 0], "ratio": [0, 0, 0]}}}
    for run in ("sigmoid_ce", "sigmoid_ce_gap"):
        write_run(tmp_path, run, fake_metrics(0.2, 0.1))
        registry.diagnostics_path(run, tmp_path).write_text(json.dumps(diag))
    series = figures.gradient_series(params, tmp_path)
    assert [s["run"] for s in series] == ["sigmoid_ce"]  # GAP never ran in it: no gap series
    assert series[0]["order"] == [2, 1, 0]               # frequent first
    fig = figures.plot_gradient_ratios(series, {})
    assert len(fig.axes[0].lines) == 1
    norms = figures.weight_norm_series(params, tmp_path)
    assert norms[0]["norm"] == [0.5, 1.0, 2.0] and norms[0]["ap"][:2] == [pytest.approx(10.0), pytest.approx(20.0)]
    assert figures.balance_rows(norms, "norm")[0]["balance"] == pytest.approx(0.25)
    totals = figures.gradient_totals(params, "table2", tmp_path)  # sigmoid_ce_gap is table2's last row
    assert [(t["run"], t["objective"], t["gap"]) for t in totals] == [("sigmoid_ce_gap", 19.0, 0.0)]  # 3 x 1 + 10 + 5 + 1
    assert totals[0]["weight_norm"] == pytest.approx(3.5 / 3)
    assert "| sigmoid_ce_gap | 19 | 0 | 1.17 |" in figures.gradient_totals_markdown(totals, {})


# ---- the toy example ---------------------------------------------------------------------------------
def test_figure3_toy_is_classified_right_but_ranked_wrong():
    logits, labels = toy.figure3_example()
    scores = torch.sigmoid(logits)
    assert toy.classified_correctly(scores, labels) == [True, True, True]
    assert [toy.ranking_ap(scores, labels, c) for c in range(3)] == [1.0, 1.0, 0.5]
    value, grad = toy.gap_value_and_grad(logits, labels)
    assert value > 0
    # the two logits GAP pushes: the soccer ball's own soccer logit up, the person's soccer logit down
    assert grad[2, 2] < 0 < grad[0, 2]
    big = grad.abs() > 0.1 * grad.abs().max()
    assert big.nonzero().tolist() == [[0, 2], [2, 2]]
    history = toy.descend(logits, labels, steps=10, loss="gap")
    assert history[0]["soccer_AP"] == 0.5 and history[-1]["soccer_AP"] == 1.0
    assert all(h["all_correct"] for h in history) and math.isclose(history[-1]["loss"], 0.0, abs_tol=1e-9)


def test_prepare_run_dir_keeps_only_a_resumable_run_of_the_same_params(tmp_path):
    from rog.engine import checkpoint, rundir

    params = {"dataset": {"a": 1}, "model": {}, "train": {"iterations": 5}}
    run = tmp_path / "run"
    assert prepare_run_dir(run, params) == "fresh"
    rundir.initialise(run, params, {})
    state = {"signature": {}, "params": params, "iteration": 2, "model": {}}
    checkpoint.save(run / "checkpoints" / "last.pt", state)
    assert prepare_run_dir(run, params) == "resume" and run.exists()
    # the run ended but its model_final.pt was removed (by hand, or by DVC before a forced rerun)
    checkpoint.save(run / "checkpoints" / "last.pt", dict(state, iteration=5))
    assert prepare_run_dir(run, params) == "resume" and (run / "model_final.pt").is_file()
    assert prepare_run_dir(run, params) == "restart" and not run.exists()  # finished: start over
    rundir.initialise(run, params, {})
    other = {"dataset": {"a": 2}, "model": {}, "train": {"iterations": 5}}
    assert prepare_run_dir(run, other) == "restart" and not run.exists()


# ---- timings in metrics.json --------------------------------------------------------------------------
def test_log_seconds_sums_every_iteration_of_a_losses_log(tmp_path):
    from rog.engine.trainer import log_seconds, truncate_log

    log = tmp_path / "losses.jsonl"
    assert log_seconds(log) == 0.0  # no log (yet): nothing trained
    log.write_text("".join(json.dumps({"iteration": i, "loss": 1.0, "seconds": 0.25 * i}) + "\n"
                           for i in (1, 2, 3, 4)) + "\n")
    assert log_seconds(log) == pytest.approx(2.5)
    truncate_log(log, 2)  # a resume from the iteration-2 checkpoint redoes 3 and 4
    assert log_seconds(log) == pytest.approx(0.75)
    log.write_text(json.dumps({"iteration": 1, "loss": 1.0}) + "\n")
    with pytest.raises(ValueError, match=r"losses.jsonl, line 1: no 'seconds'"):
        log_seconds(log)


def test_run_experiment_records_train_and_eval_seconds_and_jobs_but_not_in_summary(monkeypatch, tmp_path):
    import time

    from rog.engine import inference, trainer
    from rog.report.experiment import run_experiment

    def fake_train(params, run_dir, progress=False):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "losses.jsonl").write_text("".join(json.dumps({"iteration": i, "seconds": 1.5}) + "\n"
                                                      for i in range(1, 5)))
        (run_dir / "diagnostics.json").write_text("{}")
        return run_dir / "model_final.pt"

    def fake_evaluate(checkpoint_path, out_dir, params):
        time.sleep(0.2)
        return fake_metrics(0.3, 0.1)

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setattr(inference, "evaluate_checkpoint", fake_evaluate)
    monkeypatch.setenv("ROG_JOBS", "3")
    metrics = run_experiment("sigmoid_ce", "smoke", None, tmp_path / "runs", ROOT / "params.yaml",
                             tmp_path / "results")
    written = json.loads((tmp_path / "results" / "sigmoid_ce" / "metrics.json").read_text())
    assert written["run"] == metrics["run"]
    assert written["run"]["train_seconds"] == 6.0 and written["run"]["jobs"] == 3
    assert 0.2 <= written["run"]["eval_seconds"] < 10
    # evaluate.curve off: curve.json holds the final point only, taken from the main metrics (no cost)
    curve = json.loads((tmp_path / "results" / "sigmoid_ce" / "curve.json").read_text())
    iterations = registry.experiment_params(ROOT / "params.yaml", "smoke", "sigmoid_ce")["train"]["iterations"]
    ap = {"AP": 0.3, "AP50": 0.3, "APr": 0.1, "APc": 0.3, "APf": 0.3}
    assert curve == [{"iteration": iterations, "bbox": ap, "segm": ap}]
    assert 0 <= written["run"]["curve_seconds"] < 0.2
    summary_json = json.loads((tmp_path / "results" / "sigmoid_ce" / "summary.json").read_text())
    assert summary_json == summary(fake_metrics(0.3, 0.1))  # the DVC metric: no timings
    monkeypatch.delenv("ROG_JOBS")
    assert run_experiment("sigmoid_ce", "smoke", None, tmp_path / "runs", ROOT / "params.yaml",
                          tmp_path / "results")["run"]["jobs"] == 1
    monkeypatch.setenv("ROG_JOBS", "two")
    with pytest.raises(ValueError, match="ROG_JOBS='two'"):
        run_experiment("sigmoid_ce", "smoke", None, tmp_path / "runs", ROOT / "params.yaml", tmp_path / "results")


# ---- parallel reproduction ---------------------------------------------------------------------------
def test_parallel_tells_its_experiments_how_many_run_side_by_side(monkeypatch, tmp_path):
    import subprocess

    from rog.report import parallel

    seen = []

    def fake_run(cmd, cwd, env, text, capture_output):
        seen.append(env.get("ROG_JOBS"))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    monkeypatch.setattr(parallel.time, "sleep", lambda s: None)
    failures = parallel.run_parallel(["experiment@a", "experiment@b"], 3, tmp_path, {"PATH": "x"}, log=lambda s: None)
    assert failures == []
    assert seen == ["3", "3"]


def test_parallel_retries_dvc_lock_refusals_and_keeps_going_after_failures(monkeypatch, tmp_path):
    import subprocess

    from rog.report import parallel

    calls = []

    def fake_run(cmd, cwd, env, text, capture_output):
        target = cmd[-1]
        calls.append(target)
        assert cmd[-2] == "-s"  # single stage: concurrent workers never touch the shared upstream
        if target == "experiment@a" and calls.count(target) == 1:
            return subprocess.CompletedProcess(cmd, 255, "", "ERROR: Unable to acquire lock. Most likely ...")
        if target == "experiment@a" and calls.count(target) == 2:
            return subprocess.CompletedProcess(cmd, 255, "ERROR: 'out/x' is busy, it is being blocked by:", "")
        if target == "experiment@b":
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: failed to reproduce 'experiment@b'")
        return subprocess.CompletedProcess(cmd, 0, f"Running stage '{target}'", "")

    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    monkeypatch.setattr(parallel.time, "sleep", lambda s: None)
    failures = parallel.run_parallel(["experiment@a", "experiment@b", "experiment@c"], 2, tmp_path, None,
                                     log=lambda s: None)
    assert calls.count("experiment@a") == 3 and calls.count("experiment@b") == 1 and "experiment@c" in calls
    assert len(failures) == 1 and "experiment@b" in failures[0]


def test_posthoc_without_its_source_checkpoint_says_how_to_get_it(tmp_path):
    from rog.report.experiment import run_posthoc

    with pytest.raises(FileNotFoundError, match=r"dvc repro -f -s experiment@softmax_ce"):
        run_posthoc("softmax_ce_norcal", "smoke", None, tmp_path / "runs", results_root=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_parallel_runs_a_posthoc_right_after_its_source_and_never_after_a_failed_one(monkeypatch, tmp_path):
    import subprocess

    from rog.report import parallel

    calls = []

    def fake_run(cmd, cwd, env, text, capture_output):
        calls.append(cmd[-1])
        return subprocess.CompletedProcess(cmd, 1 if cmd[-1] == "experiment@c" else 0, "", "failed")

    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    followers = {"experiment@a": ["posthoc@a1", "posthoc@a2"], "experiment@c": ["posthoc@c1"]}
    failures = parallel.run_parallel(["experiment@a", "experiment@b", "experiment@c"], 1, tmp_path, None,
                                     log=lambda s: None, followers=followers)
    assert calls == ["experiment@a", "posthoc@a1", "posthoc@a2", "experiment@b", "experiment@c"]
    assert len(failures) == 1


def test_readme_headline_is_rewritten_between_its_markers(tmp_path, params):
    from rog.report import readme

    for name, (ap, apr) in {"sigmoid_ce": (0.20, 0.01), "sigmoid_ce_gap": (0.25, 0.10)}.items():
        write_run(tmp_path, name, fake_metrics(ap, apr))
    text = readme.headline(params, tmp_path)
    assert "| Random, Sigmoid CE | 1 | 20.0 | 1.0 |" in text and "| Random, Sigmoid CE + GAP | 1 | 25.0 | 10.0 |" in text
    assert "Softmax" not in text  # rows without results are left out
    assert "**reproduced**: GAP lifts APr over sigmoid CE (random" in text
    page = tmp_path / "README.md"
    page.write_text(f"# x\n\n{readme.BEGIN}\nold\n{readme.END}\nafter\n")
    old, new = readme.update(page, text)
    assert new.startswith("# x\n\n") and new.endswith(f"{readme.END}\nafter\n") and "old" not in new and text in new
    page.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        readme.update(page, text)


def test_omega_by_frequency_follows_eq9():
    import torch

    from rog.data.counts import CategoryCounts

    counts = CategoryCounts(instance_count=torch.tensor([1, 4, 100, 100]), image_count=torch.tensor([1, 4, 90, 90]),
                            num_images=100, frequency=("r", "r", "f", "f"))
    rows = {(r["gamma"], r["group"]): r for r in figures.omega_by_frequency(counts, gammas=(0.0, 1.0))}
    inverse = [1.0, 0.25, 0.01, 0.01]  # Eq. 9 with gamma 1: omega_m = C (1/n_m) / sum_k 1/n_k
    omega = [4 * x / sum(inverse) for x in inverse]
    assert rows[1.0, "r"]["mean"] == pytest.approx((omega[0] + omega[1]) / 2)
    assert rows[1.0, "r"]["max"] == pytest.approx(omega[0]) and rows[1.0, "f"]["min"] == pytest.approx(omega[2])
    assert rows[0.0, "r"]["mean"] == pytest.approx(1.0) and rows[0.0, "f"]["mean"] == pytest.approx(1.0)
    assert (1.0, "c") not in rows  # no common class here
    assert "| 1 | f | 0.0315 |" in figures.omega_markdown(list(rows.values()))


# ---- convergence ------------------------------------------------------------------------------------
def fake_curve(iterations: list[int], aps: list[float]) -> list[dict]:
    metrics = lambda ap: {"AP": ap, "AP50": ap, "APr": -1.0, "APc": ap, "APf": ap}  # noqa: E731
    return [{"iteration": i, "bbox": metrics(ap), "segm": metrics(ap / 2)} for i, ap in zip(iterations, aps)]


def test_learning_curves_draw_one_line_per_run_the_1x_ends_and_lr_drops():
    curves = {"CE": fake_curve([300, 600, 900], [0.1, 0.2, 0.25]), "GAP": fake_curve([300, 900], [0.15, 0.3])}
    ends = {"CE": fake_curve([450], [0.24])[0]}
    fig = figures.learning_curves(curves, ends, lr_drops=[600, 800])
    box, mask = fig.axes
    for ax, scale in ((box, 1.0), (mask, 0.5)):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert {k for k in lines if not k.startswith("_")} == {"CE, 2x", "GAP, 2x", "CE, 1x end", "lr drop"}
        assert list(lines["CE, 2x"].get_xdata()) == [300, 600, 900]
        assert list(lines["GAP, 2x"].get_ydata()) == pytest.approx([15 * scale, 30 * scale])
        assert list(lines["CE, 1x end"].get_ydata()) == pytest.approx([24 * scale])
        assert lines["CE, 1x end"].get_color() == lines["CE, 2x"].get_color() != lines["GAP, 2x"].get_color()
        assert sum(list(line.get_xdata()) in ([600, 600], [800, 800]) for line in ax.get_lines()) == 2
    empty = figures.learning_curves({}, {})  # no results yet: empty axes, no error
    assert len(empty.axes) == 2 and not empty.axes[0].get_lines()


def test_convergence_table_checks_the_tolerance_and_names_missing_runs(tmp_path, params, paper):
    labels = {k: v["label"] for k, v in paper["convergence"]["rows"].items()}
    write_run(tmp_path, "sigmoid_ce", fake_metrics(0.20, 0.1))
    write_run(tmp_path, "sigmoid_ce_2x", fake_metrics(0.21, 0.1))  # +1.0 AP: converged
    write_run(tmp_path, "sigmoid_ce_gap", fake_metrics(0.20, 0.1))
    rows = figures.convergence_rows(params, root=tmp_path)
    assert [r["setting"] for r in rows] == ["sigmoid_ce", "sigmoid_ce_gap"]
    assert rows[0]["bbox"]["diff"] == pytest.approx(1.0) and rows[0]["converged"] is True
    assert rows[1]["converged"] is None and rows[1]["missing"] == ["sigmoid_ce_gap_2x"]
    text = figures.convergence_markdown(rows, labels)
    assert "| Sigmoid CE | sigmoid_ce | sigmoid_ce_2x | 20.0 | 21.0 | +1.0 |" in text
    verdict = figures.convergence_verdict(rows)
    assert "sigmoid_ce: converged" in verdict and "no results for sigmoid_ce_gap_2x" in verdict
    write_run(tmp_path, "sigmoid_ce_gap_2x", fake_metrics(0.22, 0.1))  # +2.0 AP: still climbing
    rows = figures.convergence_rows(params, root=tmp_path)
    assert rows[1]["converged"] is False and "sigmoid_ce_gap: NOT converged" in figures.convergence_verdict(rows)
    # the curves: 2x runs as lines, 1x runs' last points as ends; runs without curve.json listed
    for run, curve in (("sigmoid_ce", fake_curve([1200], [0.2])),
                       ("sigmoid_ce_2x", fake_curve([300, 2400], [0.1, 0.21]))):
        registry.curve_path(run, tmp_path).write_text(json.dumps(curve))
    metrics = fake_metrics(0.21, 0.1)
    metrics["run"]["iterations"] = 2400
    write_run(tmp_path, "sigmoid_ce_2x", metrics)
    data = figures.convergence_curves(params, labels, root=tmp_path)
    assert list(data["curves"]) == ["Sigmoid CE"] and data["ends"]["Sigmoid CE"]["iteration"] == 1200
    assert data["lr_drops"] == [round(f * 2400) for f in params["train"]["lr_steps"]]
    assert data["missing"] == ["sigmoid_ce_gap_2x", "sigmoid_ce_gap"]

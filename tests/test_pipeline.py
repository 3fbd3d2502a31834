"""rog.pipeline: the registry, one params path (resolve_run, the CLI and the stages agree), dvc.yaml
generation, notebook stripping, the experiment stage's launcher and record, the parallel runner (fast;
the pipeline itself: test_pipeline_smoke, the torchrun launch: test_pipeline_run)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from rog.config import RUN_SECTIONS, ParamsError, resolve_run
from rog.pipeline import dvcyaml, notebooks, registry, stage
from rog.pipeline.stage import prepare_run_dir, summary

ROOT = Path(__file__).resolve().parents[1]


def fake_metrics(ap: float, apr: float) -> dict:
    m = {"AP": ap, "AP50": ap, "APr": apr, "APc": ap, "APf": ap, "AR": ap, "AP75": ap}
    return {"bbox": {"metrics": m}, "segm": {"metrics": m}}


# ---- registry -----------------------------------------------------------------------------------------
def test_registry_is_consistent_with_itself_and_the_paper_numbers(params, paper):
    registry.validate(params, paper)
    assert params["profile"] == "default"


def test_every_experiment_resolves_on_every_pipeline_profile(params):
    for name in params["experiments"]:
        for profile in ("default", "smoke"):
            p = resolve_run(ROOT / "params.yaml", profile, name)
            assert set(p) == set(RUN_SECTIONS)


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
        ranking = overlay.get("model", {}).get("ranking", {})
        rfs = overlay.get("dataset", {}).get("sampler", {}).get("kind") == "repeat_factor"
        if ranking.get("name") == "gap" and "lambda" not in name:
            assert ranking.get("weight", 1.0) == (0.1 if rfs else 1.0), name
    assert exps["seesaw_rfs_gap_2x"]["schedule"]["length"] == 2.0
    assert set(params["tables"]) == {"table1", "table2", "table3", "table4", "table5", "table6", "sweeps"}
    assert set(params["figures"]) == {"figure4", "figure5", "convergence"}
    # the convergence check: the headline runs on a 2x schedule, nothing else changed but the kept curve
    for base in ("sigmoid_ce", "sigmoid_ce_gap"):
        long = exps[f"{base}_2x"]
        assert long["schedule"] == {"length": 2.0} and long["evaluate"] == {"curve": True}
        assert {k: v for k, v in long.items() if k not in ("schedule", "train", "evaluate")} == exps[base]
        p = resolve_run(ROOT / "params.yaml", "default", f"{base}_2x")["train"]
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
    one = resolve_run(path, "smoke", "seesaw")
    two = resolve_run(path, "smoke", "seesaw_rfs_2x")
    assert two["train"]["iterations"] == 2 * one["train"]["iterations"]
    assert two["dataset"]["sampler"]["kind"] == "repeat_factor"
    p["experiments"]["bad"] = {"schedule": {"length": 0}}
    path.write_text(yaml.safe_dump(p))
    with pytest.raises(ParamsError, match="schedule.length"):
        resolve_run(path, "smoke", "bad")


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
    assert (ROOT / "dvc.yaml").read_text() == dvcyaml.render(params), \
        "dvc.yaml is stale: run `python -m rog report pipeline`"


def test_table_stages_depend_on_metrics_files_never_on_notebooks(params):
    stages = dvcyaml.stages(params)
    for name in registry.sections(params):
        deps = stages[name]["deps"]
        runs = registry.table_runs(params, name)
        reads_diagnostics = name.startswith("figure") or name == "table2"  # table2: gradient totals
        reads_curves = name == "convergence"
        assert {d for d in deps if d.startswith("results/")} == {"results/freshness.json"} | \
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
    (tmp_path / "dvc.yaml").write_text(dvcyaml.render(registry.subset_params(params, "smoke")))
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
        if path.stem not in ("overview", "gap_loss", "lookalike"):
            assert any("parameters" in c["metadata"].get("tags", []) for c in code), path.name


def test_project_root_walks_up(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert notebooks.project_root(tmp_path / "a" / "b") == tmp_path.resolve()
    with pytest.raises(FileNotFoundError):
        notebooks.project_root(Path("/"))


def test_summary_is_the_flat_dvc_metric():
    s = summary(fake_metrics(0.123456, 0.05))
    assert s["bbox"] == {"AP": 0.1235, "AP50": 0.1235, "APr": 0.05, "APc": 0.1235, "APf": 0.1235, "AR": 0.1235}


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


def fake_launch(calls: list):
    """stage.launch stand-in: records argv, writes what `rog train` / `rog evaluate` would."""
    def launch(argv, log=print):
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        if "train" in argv:
            (out / "losses.jsonl").write_text("".join(json.dumps({"iteration": i, "lr": 0.1, "loss": 4.0 / i,
                                                                  "loss_mask": 1.0, "seconds": 1.5}) + "\n"
                                                      for i in range(1, 5)))
            (out / "diagnostics.json").write_text("{}")
            (out / "run.json").write_text(json.dumps({"provenance": {"commit": "abc123", "dirty": False}}))
        else:
            (out / "metrics.json").write_text(json.dumps(fake_metrics(0.3, 0.1)))
            (out / "timing.json").write_text(json.dumps({"eval_seconds": 2.5, "curve_seconds": 0.0}))
            (out / "lookalike.json").write_text(json.dumps({"counts": {"instances": 7}}))
            (out / "detections.json").write_text(json.dumps({"images": []}))
    return launch


def test_run_experiment_launches_train_then_evaluate_and_records_timings_not_in_summary(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(stage, "launch", fake_launch(calls))
    monkeypatch.setenv("ROG_JOBS", "3")
    data = tmp_path / "data"  # 4 training images, 3 of them annotated
    data.mkdir()
    (data / "train.json").write_text(json.dumps({
        "images": [{"id": i} for i in range(4)], "categories": [{"id": 1, "frequency": "f"}],
        "annotations": [{"id": i, "image_id": i % 3, "category_id": 1} for i in range(5)]}))
    metrics = stage.run_experiment("sigmoid_ce", "smoke", str(data), tmp_path / "runs", ROOT / "params.yaml",
                                   tmp_path / "results", log=lambda s: None)
    assert [c[c.index("rog") + 1] for c in calls] == ["train", "evaluate"]
    assert calls[0][calls[0].index("--set") + 1] == f"dataset.root={data}"
    smoke = resolve_run(ROOT / "params.yaml", "smoke", "sigmoid_ce")["train"]
    assert metrics["run"]["train_images"] == 3  # what the run trained on, recorded for the report
    assert metrics["run"]["epochs"] == pytest.approx(smoke["iterations"] * smoke["batch_size"] / 3, abs=1e-4)
    assert metrics["run"]["lr_drops"] == [round(s * smoke["iterations"]) for s in smoke["lr_steps"]]
    written = json.loads((tmp_path / "results" / "sigmoid_ce" / "metrics.json").read_text())
    assert written["run"] == metrics["run"]
    assert written["run"]["train_seconds"] == 6.0 and written["run"]["jobs"] == 3
    assert written["run"]["eval_seconds"] == 2.5 and written["run"]["curve_seconds"] == 0.0
    assert written["train_provenance"] == {"commit": "abc123", "dirty": False}  # the training's, from run.json
    # evaluate.curve off: curve.json holds the final point only, taken from the main metrics (no cost)
    curve = json.loads((tmp_path / "results" / "sigmoid_ce" / "curve.json").read_text())
    iterations = resolve_run(ROOT / "params.yaml", "smoke", "sigmoid_ce")["train"]["iterations"]
    ap = {"AP": 0.3, "AP50": 0.3, "APr": 0.1, "APc": 0.3, "APf": 0.3}
    assert curve == [{"iteration": iterations, "bbox": ap, "segm": ap}]
    losses = json.loads((tmp_path / "results" / "sigmoid_ce" / "losses.json").read_text())
    assert losses["iteration"] == [1, 2, 3, 4] and losses["loss"] == [4.0, 2.0, 4.0 / 3, 1.0]
    summary_json = json.loads((tmp_path / "results" / "sigmoid_ce" / "summary.json").read_text())
    assert summary_json == summary(fake_metrics(0.3, 0.1))  # the DVC metric: no timings
    # rog evaluate's analyses recorded as they are (indented for git)
    assert json.loads((tmp_path / "results" / "sigmoid_ce" / "lookalike.json").read_text()) == {"counts": {"instances": 7}}
    assert json.loads((tmp_path / "results" / "sigmoid_ce" / "detections.json").read_text()) == {"images": []}
    monkeypatch.delenv("ROG_JOBS")
    assert stage.run_experiment("sigmoid_ce", "smoke", str(data), tmp_path / "runs2", ROOT / "params.yaml",
                                tmp_path / "results", log=lambda s: None)["run"]["jobs"] == 1
    monkeypatch.setenv("ROG_JOBS", "two")
    with pytest.raises(ValueError, match="ROG_JOBS='two'"):
        stage.run_experiment("sigmoid_ce", "smoke", None, tmp_path / "runs", ROOT / "params.yaml",
                             tmp_path / "results")


def test_loss_curve_averages_windows_of_iterations(tmp_path):
    log = tmp_path / "losses.jsonl"
    log.write_text("".join(json.dumps({"iteration": i, "lr": 1.0, "loss": float(i), "seconds": 0.1}) + "\n"
                           for i in range(1, 11)))
    out = stage.loss_curve(log, points=4)  # windows of ceil(10 / 4) = 3 iterations
    assert out["iteration"] == [3, 6, 9, 10] and out["loss"] == [2.0, 5.0, 8.0, 10.0] and "seconds" not in out


# ---- parallel reproduction ---------------------------------------------------------------------------
def test_parallel_tells_its_experiments_how_many_run_side_by_side(monkeypatch, tmp_path):
    import subprocess

    from rog.pipeline import parallel

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

    from rog.pipeline import parallel

    calls = []

    def fake_run(cmd, cwd, env, text, capture_output):
        target = cmd[-1]
        calls.append(target)
        assert cmd[3] == "--wait-for-lock"  # the relock after a command waits instead of failing
        if cmd[4] == "commit":
            commits.append(target)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        assert cmd[-2] == "-s"  # single stage: concurrent workers never touch the shared upstream
        if target == "experiment@d":  # the command ran, then the lock refused its record: commit, not retrain
            return subprocess.CompletedProcess(cmd, 255, f"Running stage '{target}':\n> papermill ...",
                                               "ERROR: Unable to acquire lock. Most likely ...")
        if target == "experiment@a" and calls.count(target) == 1:
            return subprocess.CompletedProcess(cmd, 255, "", "ERROR: Unable to acquire lock. Most likely ...")
        if target == "experiment@a" and calls.count(target) == 2:
            return subprocess.CompletedProcess(cmd, 255, "ERROR: 'out/x' is busy, it is being blocked by:", "")
        if target == "experiment@b":
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: failed to reproduce 'experiment@b'")
        return subprocess.CompletedProcess(cmd, 0, f"Running stage '{target}'", "")

    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    monkeypatch.setattr(parallel.time, "sleep", lambda s: None)
    commits = []
    failures = parallel.run_parallel(["experiment@a", "experiment@b", "experiment@c", "experiment@d"], 2, tmp_path,
                                     None, log=lambda s: None)
    assert calls.count("experiment@a") == 3 and calls.count("experiment@b") == 1 and "experiment@c" in calls
    assert len(failures) == 1 and "experiment@b" in failures[0]
    assert commits == ["experiment@d"] and calls.count("experiment@d") == 2   # one repro, one commit


def test_parallel_logs_each_start_end_and_failure_with_the_time_as_it_happens(monkeypatch, tmp_path):
    import re
    import subprocess

    from rog.pipeline import parallel

    def fake_run(cmd, cwd, env, text, capture_output):
        code = 1 if cmd[-1] == "experiment@b" else 0
        return subprocess.CompletedProcess(cmd, code, "", "ERROR: failed to reproduce 'experiment@b'" if code else "")

    monkeypatch.setattr(parallel.subprocess, "run", fake_run)
    monkeypatch.setattr(parallel.time, "sleep", lambda s: None)
    lines: list[str] = []
    failures = parallel.run_parallel(["experiment@a", "experiment@b"], 1, tmp_path, None, log=lines.append)
    stamp = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\] "
    events = [re.sub(stamp, "", line).split(" in ")[0].split(" after ")[0] for line in lines if re.match(stamp, line)]
    assert events == ["start experiment@a", "done experiment@a", "start experiment@b", "failed experiment@b"]
    failed = next(line for line in lines if "failed experiment@b" in line)
    assert "failed to reproduce 'experiment@b'" in failed and len(failures) == 1


def test_posthoc_without_its_source_checkpoint_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dvc repro -f -s experiment@softmax_ce"):
        stage.run_posthoc("softmax_ce_norcal", "smoke", None, tmp_path / "runs", results_root=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_parallel_runs_a_posthoc_right_after_its_source_and_never_after_a_failed_one(monkeypatch, tmp_path):
    import subprocess

    from rog.pipeline import parallel

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



# ---- one params path: the CLI and the pipeline ------------------------------------------------------
def cli_params(argv: list[str]) -> dict:
    """The params `python -m rog <argv>` resolves (train, evaluate or params), without running it."""
    from rog.cli import build_parser
    from rog.commands import evaluate, resolve_args

    args = build_parser().parse_args(argv)
    return evaluate.evaluation_params(args, {}) if args.command == "evaluate" else resolve_args(args)


def test_cli_and_pipeline_resolve_the_same_params_for_every_registry_entry(params, tmp_path):
    path = ROOT / "params.yaml"
    dataset = "out/pipeline/smoke/dataset"
    for profile in ("smoke", "default"):
        for name in registry.run_names(params):
            overrides = stage.stage_overrides(name, profile, dataset, path)
            pipeline = resolve_run(path, profile, name, overrides)  # what the stage records
            user = cli_params(["params", "--params", str(path), "--profile", profile, "--experiment", name,
                               "--set", f"dataset.root={dataset}"])
            assert user == pipeline, name
            evaluate = stage.evaluate_command(name, profile, overrides, "x.pt", tmp_path, path)
            assert cli_params(evaluate[evaluate.index("rog") + 1:]) == pipeline, name
            if name in params["experiments"]:
                train = stage.train_command(name, profile, overrides, tmp_path, path)
                assert cli_params(train[train.index("rog") + 1:]) == pipeline, name
                assert pipeline["evaluate"]["norcal_gamma"] is None
            else:
                spec = params["posthoc"][name]
                source = resolve_run(path, profile, spec["source"], overrides)
                assert pipeline == {**source, "evaluate": {**source["evaluate"], "norcal_gamma": spec["norcal_gamma"]}}
            assert set(pipeline) == set(RUN_SECTIONS)  # no registry keys (tables, posthoc, subsets ...)


def test_rog_params_prints_the_schedule_length_applied(capsys):
    from rog.cli import main

    def iterations(*argv) -> int:
        assert main(["params", *argv, "--section", "train"]) == 0
        return yaml.safe_load(capsys.readouterr().out)["train"]["iterations"]

    assert iterations("--experiment", "seesaw") == 1200
    assert iterations("--experiment", "seesaw_rfs_2x") == 2400
    assert iterations("--experiment", "seesaw_rfs_2x", "--profile", "smoke") == 40
    assert iterations("--experiment", "seesaw_rfs_2x", "--set", "schedule.length=3") == 3600
    assert iterations("--experiment", "seesaw_rfs_2x", "--set", "train.iterations=7") == 7  # overrides last
    assert main(["params", "--experiment", "nope"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_set_takes_several_values_after_one_flag_and_repeats():
    from rog.cli import build_parser

    args = build_parser().parse_args(["train", "--out", "x", "--set", "train.seed=1", "train.lr=0.5",
                                      "--profile", "smoke", "--set", "model.ranking.name=gap"])
    assert args.overrides == ["train.seed=1", "train.lr=0.5", "model.ranking.name=gap"]
    p = cli_params(["params", "--profile", "smoke", "--set", "train.seed=1", "train.lr=0.5",
                    "--set", "model.ranking.name=gap"])
    assert (p["train"]["seed"], p["train"]["lr"], p["model"]["ranking"]["name"]) == (1, 0.5, "gap")


def test_evaluate_options_are_overrides():
    p = cli_params(["evaluate", "--checkpoint", "x.pt", "--out", "o", "--profile", "smoke", "--k", "300", "10",
                    "3000", "--boxes-only"])
    assert p["model"]["test"]["detections_per_img"] == 3000 and p["evaluate"]["max_dets"] == 3000
    assert p["evaluate"]["max_dets_sweep"] == [10, 300, 3000] and p["evaluate"]["masks"] is False
    assert p["model"]["test"]["masks_per_img"] is None  # with masks, one for each of the K boxes


def test_evaluate_k_on_a_checkpoint_whose_params_predate_the_mask_budget(tmp_path):
    """Checkpoint params without model.test.masks_per_img (absent = a mask per box): checkpoint.load fills
    the key with that meaning, so --k applies to them as to today's."""
    import copy

    from rog.cli import build_parser
    from rog.commands.evaluate import evaluation_params
    from rog.config import resolve_run
    from rog.engine import checkpoint

    old = resolve_run("params.yaml", "smoke")
    del old["model"]["test"]["masks_per_img"]
    path = checkpoint.save(tmp_path / "old.pt", {"signature": {}, "params": copy.deepcopy(old), "iteration": 1,
                                                 "model": {}})
    loaded = checkpoint.load(path)["params"]
    assert loaded["model"]["test"] == {**old["model"]["test"], "masks_per_img": None}
    args = build_parser().parse_args(["evaluate", "--checkpoint", "x.pt", "--out", "o", "--k", "50", "1000"])
    p = evaluation_params(args, loaded)
    assert p["model"]["test"] == {**old["model"]["test"], "masks_per_img": None, "detections_per_img": 1000}
    assert p["evaluate"]["max_dets_sweep"] == [50, 1000]
    assert checkpoint.with_added_keys({"train": {}}) == {"train": {}}  # a section it lacks stays absent


def test_training_stages_depend_on_every_module_they_run_and_on_no_presentation_code(params):
    """The modules `rog train` / `rog evaluate` and the stage launcher import are all dependencies of the
    experiment and post-hoc stages; rog.report (tables, figures, notebooks' views) is none of them."""
    import subprocess
    import sys

    code = ("import sys, rog.cli, rog.commands.train, rog.commands.evaluate, rog.pipeline.stage, rog.engine.trainer, "
            "rog.engine.inference, rog.engine.curve, rog.losses.objectives, rog.evaluation.metrics, "
            "rog.evaluation.lookalike, rog.evaluation.samples, rog.data.lookalikes; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('rog') and m.__file__))")
    files = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    used = {str(Path(f).resolve().relative_to(ROOT)) for f in files.stdout.split()}
    stages = dvcyaml.stages(params)
    for kind in ("experiment", "posthoc"):
        deps = stages[kind]["do"]["deps"]
        assert not [d for d in deps if d.startswith(("rog/report", "rog/pipeline/registry", "rog/pipeline/dvcyaml"))]
        uncovered = [f for f in used if not any(f == d or f.startswith(d + "/") for d in deps)]
        assert not uncovered, (kind, uncovered)
    assert any(d.startswith("rog/report/") for d in stages["table1"]["deps"])
    # the run and look-alike pages are presentation: report code, the runs' results files, no training code
    training = ("rog/engine/trainer.py", "rog/models/builder.py", "rog/commands/train.py", "rog/data/loader.py",
                "rog/models", "rog/engine", "rog/data")
    for deps in (stages["run"]["do"]["deps"], stages["lookalike"]["deps"]):
        assert any(d.startswith("rog/report/") for d in deps) and not [d for d in deps if d in training]
    assert "results/experiments/${key}/detections.json" in stages["run"]["do"]["deps"]
    assert {"results/experiments/sigmoid_ce_gap_seed2/lookalike.json",
            "results/experiments/sigmoid_ce_gap/detections.json"} <= set(stages["lookalike"]["deps"])


def test_every_stage_depends_on_the_code_its_commands_import():
    """dvc.yaml as committed: each stage's deps cover every file of rog/ that its commands import (inside
    functions too) or read beside a module (rog.pipeline.imports), so editing any of them re-runs it."""
    committed = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert dvcyaml.missing_code(committed) == {}


@pytest.mark.parametrize("notebook", ["table1", "overview", "run", "dataset", "gap_loss", "experiment"])
def test_the_derived_deps_hold_what_a_notebook_really_imports(notebook):
    """An oracle for the static reading: import what the notebook imports, in a fresh interpreter, and check
    every rog module then loaded is in the stage's derived code deps."""
    import subprocess
    import sys

    from rog.pipeline import imports

    known = imports.module_files(ROOT)
    modules = sorted(m for m in imports.notebook_modules(ROOT / f"notebooks/{notebook}.ipynb") if m in known)
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('rog') and m.__file__))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = {str(Path(f).resolve().relative_to(ROOT)) for f in out.split()}
    deps = imports.stage_code(f"papermill notebooks/{notebook}.ipynb out.ipynb", ROOT)
    assert loaded and [f for f in loaded if not imports.covered(f, deps)] == []


def test_derived_deps_catch_code_a_stage_runs_but_does_not_list(tmp_path):
    """A deliberately broken copy: a table page's module starts importing training code inside a function.
    The committed dvc.yaml's deps no longer cover what the stage runs, and the check names the file."""
    import shutil

    for folder in ("rog", "notebooks"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    committed = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert dvcyaml.missing_code(committed, tmp_path) == {}
    tables = tmp_path / "rog/report/tables.py"
    tables.write_text(tables.read_text() + "\n\ndef _late():\n    from rog.engine import trainer  # noqa: F401\n")
    missing = dvcyaml.missing_code(committed, tmp_path)
    assert "table1" in missing and "rog/engine/trainer.py" in missing["table1"]
    assert "experiment" not in missing  # training stages already depend on the trainer


def test_questions_name_known_rows_and_runs(params):
    """params.yaml's questions: every TABLE/ROW is a row and every run a run of the registry; a subset keeps
    the names it removed valid; the look-alike pair is read from them."""
    import copy

    assert registry.pair_runs(params)["sigmoid CE"] == ["sigmoid_ce", "sigmoid_ce_seed1", "sigmoid_ce_seed2"]
    registry.validate(registry.subset_params(params, "smoke"))
    bad = copy.deepcopy(params)
    bad["questions"]["gain"]["adamw"]["ce"] = "nope"
    with pytest.raises(registry.RegistryError, match="questions.gain: unknown run 'nope'"):
        registry.validate(bad)
    bad = copy.deepcopy(params)
    bad["questions"]["lookalike"]["pair"][0]["row"] = "table1/random/nope"
    with pytest.raises(registry.RegistryError, match="'table1/random/nope' is no row of table1"):
        registry.validate(bad)

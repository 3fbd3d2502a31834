"""rog.pipeline.projection: the pipeline's projected wall time from the runs' recorded timings (fake results)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rog.cli import main
from rog.pipeline import projection, registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params_path(tmp_path) -> Path:
    """params.yaml with a small registry: a, c, d at the default profile's 1200 iterations, b at 2x."""
    params = registry.read_params(ROOT / "params.yaml")
    params["profile"] = "default"
    params["experiments"] = {"a": {}, "b": {"schedule": {"length": 2.0}}, "c": {}, "d": {}}
    params["posthoc"] = {"p": {"source": "a"}, "q": {"source": "c"}}
    for key in ("tables", "figures", "subsets"):
        params.pop(key, None)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def write(root: Path, name: str, profile: str = "default", **run) -> None:
    path = registry.metrics_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bbox": {}, "run": {"name": name, "profile": profile, **run}}))


def test_projection_uses_measured_runs_and_estimates_the_others_from_medians(tmp_path, params_path):
    # a: 1.0 s/iteration, measured at half the iterations the registry now gives it; b: 3.0 s/iteration
    write(tmp_path, "a", iterations=600, train_seconds=600.0, eval_seconds=100.0, jobs=2)
    write(tmp_path, "b", iterations=2400, train_seconds=7200.0, eval_seconds=240.0, curve_seconds=60.0, jobs=2)
    write(tmp_path, "c", iterations=1200)  # older code: no timings
    write(tmp_path, "d", "smoke", iterations=20, train_seconds=1.0, eval_seconds=1.0, jobs=1)  # other profile
    write(tmp_path, "p", iterations=600, train_seconds=0.0, eval_seconds=50.0, jobs=2)
    # q: never run
    result = projection.projection(params_path, tmp_path, jobs=2)
    rows = {row["run"]: row for row in result["rows"]}
    assert [row["run"] for row in result["rows"]] == ["b", "c", "d", "a", "q", "p"]  # by cost, then name
    assert rows["a"] == {"run": "a", "iterations": 1200, "train_seconds": 1200.0, "eval_seconds": 100.0,
                         "jobs": 2, "measured": True}
    assert rows["b"]["iterations"] == 2400 and rows["b"]["train_seconds"] == 7200.0
    assert rows["b"]["eval_seconds"] == 300.0  # the learning curve's evaluations count as evaluation
    # estimates: median of 1.0 and 3.0 s/iteration = 2.0; median of the measured evals 100, 300, 50 = 100
    for name in ("c", "d"):
        assert rows[name] == {"run": name, "iterations": 1200, "train_seconds": 2400.0, "eval_seconds": 100.0,
                              "jobs": None, "measured": False}
    assert rows["p"] == {"run": "p", "iterations": 0, "train_seconds": 0.0, "eval_seconds": 50.0, "jobs": 2,
                         "measured": True}
    assert rows["q"] == {"run": "q", "iterations": 0, "train_seconds": 0.0, "eval_seconds": 100.0, "jobs": None,
                         "measured": False}
    compute = 1300 + 7500 + 2500 + 2500 + 50 + 100
    assert result["compute_seconds"] == compute and result["wall_seconds"] == compute / 2
    assert (result["measured"], result["estimated"]) == (3, 3)
    assert (result["seconds_per_iteration"], result["eval_seconds"]) == (2.0, 100.0)
    assert projection.projection(params_path, tmp_path, jobs=1)["wall_seconds"] == compute
    printed = projection.text(result)
    assert "6975 s (1.94 h)" in printed and "already include" in printed and "estimated" in printed


def test_projection_command_prints_the_table(tmp_path, params_path, capsys):
    for name in ("a", "b", "c", "d"):
        write(tmp_path, name, iterations=1200, train_seconds=1200.0, eval_seconds=60.0, jobs=2)
    for name in ("p", "q"):
        write(tmp_path, name, iterations=1200, train_seconds=0.0, eval_seconds=60.0, jobs=2)
    assert main(["report", "projection", "--params", str(params_path), "--root", str(tmp_path), "--jobs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["b", "2400", "2400"]
    assert "6 measured, 0 estimated" in out and "with 3 side by side: 2120 s" in out  # (3 x 1260 + 2460 + 2 x 60) / 3


def test_no_recorded_timing_is_a_clear_error(tmp_path, params_path, capsys):
    write(tmp_path, "a", iterations=1200)  # results of the older code
    with pytest.raises(projection.ProjectionError, match="no recorded timing"):
        projection.projection(params_path, tmp_path)
    assert main(["report", "projection", "--params", str(params_path), "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no recorded timing" in err and "run.train_seconds" in err and "Traceback" not in err
    write(tmp_path, "p", iterations=0, train_seconds=0.0, eval_seconds=50.0, jobs=1)  # a post-hoc run only
    with pytest.raises(projection.ProjectionError, match="cannot estimate 'a'"):
        projection.projection(params_path, tmp_path)


def test_a_ladder_regime_estimates_every_run(tmp_path, monkeypatch):
    """--ladder REGIME: the registry's cost at that regime's median rate and evaluation, results/ ignored."""
    from rog.pipeline import projection as projection_module
    from rog.pipeline.projection import ProjectionError, ladder_reference, projection

    folder = tmp_path / "results" / "ladder" / "r"
    folder.mkdir(parents=True)
    for name, train, evaluation in (("a", 600.0, 100.0), ("b", 720.0, 140.0), ("c", 1200.0, 200.0)):
        (folder / f"{name}.json").write_text(json.dumps({"iterations": 1200, "train_seconds": train,
                                                         "eval_seconds": evaluation}))
    (folder / "dataset.json").write_text(json.dumps({"train_images": 3000}))
    reference = ladder_reference("r", tmp_path)
    assert reference == {"seconds_per_iteration": 0.6, "eval_seconds": 140.0, "runs": 3}
    params = {"profile": "default", "experiments": {"sigmoid_ce": {}, "sigmoid_ce_2x": {"schedule": {"length": 2.0}}},
              "posthoc": {}, **{k: v for k, v in registry.read_params("params.yaml").items() if k in ("dataset", "model", "train",
                                                                                              "evaluate", "pretrain",
                                                                                              "profiles")}}
    result = projection(params, tmp_path, jobs=2, reference=reference)
    rows = {r["run"]: r for r in result["rows"]}
    assert rows["sigmoid_ce"]["train_seconds"] == pytest.approx(0.6 * 1200)
    assert rows["sigmoid_ce_2x"]["train_seconds"] == pytest.approx(0.6 * 2400)
    assert result["compute_seconds"] == pytest.approx(0.6 * 3600 + 2 * 140.0) and result["measured"] == 0
    assert result["beyond_budget"] == []
    # a budget of 0.3 h (1,080 s): sigmoid_ce (860 s) fits, sigmoid_ce_2x (1,580 s) comes after it in registry order
    monkeypatch.setattr(projection_module, "BUDGET_HOURS", 0.3)
    result = projection(params, tmp_path, jobs=2, reference=reference)
    assert result["beyond_budget"] == ["sigmoid_ce_2x"]
    assert "beyond the budget of 0.3 h of compute, in registry order: 1 runs: sigmoid_ce_2x" in \
        projection_module.text(result)
    with pytest.raises(ProjectionError, match="no ladder run recorded for regime 'none'"):
        ladder_reference("none", tmp_path)

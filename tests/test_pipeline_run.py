"""The experiment stage end to end on CPU (rog.pipeline.stage.run_experiment): `rog train` launched
through torchrun with two gloo processes when train.processes is 2, then `rog evaluate`, then the record.
A few iterations of a small model (about a minute on 2 cores)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_engine import FAST, render_smoke  # noqa: E402

from rog.engine import checkpoint  # noqa: E402
from rog.pipeline import stage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def small_params(tmp_path: Path, processes: int) -> Path:
    """params.yaml whose smoke profile trains the FAST settings with `processes` processes."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for text in FAST + ["train.iterations=4", "train.batch_size=4", f"train.processes={processes}"]:
        key, value = text.split("=", 1)
        *parents, leaf = key.split(".")
        target = params["profiles"]["smoke"]
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = yaml.safe_load(value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_two_processes_train_through_torchrun_then_evaluate_and_record(tmp_path_factory, tmp_path, monkeypatch):
    data = render_smoke(tmp_path_factory.getbasetemp())
    path = small_params(tmp_path, processes=2)
    launched = []
    launch = stage.launch
    monkeypatch.setattr(stage, "launch", lambda argv, log=print: (launched.append(argv), launch(argv, log)))
    metrics = stage.run_experiment("sigmoid_ce", "smoke", str(data), tmp_path / "runs", path, tmp_path / "results",
                                   log=lambda s: None)
    train, evaluate = launched
    assert train[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert train[train.index("-m", 2) + 1:][:2] == ["rog", "train"] and evaluate[1:4] == ["-m", "rog", "evaluate"]
    final = checkpoint.load(tmp_path / "runs" / "sigmoid_ce" / "model_final.pt")
    assert final["world_size"] == 2 and final["iteration"] == 4  # two gloo processes trained it
    written = json.loads((tmp_path / "results" / "sigmoid_ce" / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics)) and written["run"]["iterations"] == 4
    assert written["run"]["train_seconds"] > 0 and written["run"]["eval_seconds"] > 0
    for name in ("summary.json", "diagnostics.json", "curve.json", "losses.json"):
        assert (tmp_path / "results" / "sigmoid_ce" / name).is_file(), name


def test_rog_train_refuses_a_process_count_other_than_train_processes(tmp_path_factory, tmp_path):
    from rog.cli import main

    data = render_smoke(tmp_path_factory.getbasetemp())
    code = main(["train", "--profile", "smoke", "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", f"dataset.root={data}", "train.processes=2"])
    assert code == 2 and not (tmp_path / "run").exists()

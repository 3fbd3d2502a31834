"""Training engine: schedule, checkpoints, run folders, exact kill-and-resume, diagnostics."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rog.config import resolve_run
from rog.data.glyphs import generate
from rog.engine import checkpoint, diagnostics, rundir
from rog.engine.schedule import lr_factor
from rog.engine.trainer import train

# a few iterations of a small model on a few dozen LT-Glyphs images: seconds, not minutes
FAST = ["train.iterations=6", "train.batch_size=2", "train.checkpoint_every=2", "train.warmup_iterations=2",
        "model.rpn.post_nms_top_n_train=64", "model.rpn.post_nms_top_n_test=32",
        "model.roi.batch_size_per_image=32", "model.test.detections_per_img=20",
        "evaluate.max_dets=20", "evaluate.max_dets_sweep=[10,20]"]


def render_smoke(root: Path) -> Path:
    """The smoke profile's LT-Glyphs, made smaller (24 train, 8 val images); reused across tests."""
    data = root / "glyphs"
    if not (data / "val.json").is_file():
        glyphs = resolve_run("params.yaml", "smoke", overrides=["dataset.glyphs.num_train=24",
                                                                "dataset.glyphs.num_val=8"])["dataset"]["glyphs"]
        generate(glyphs, data)
    return data


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    return render_smoke(tmp_path_factory.getbasetemp())


def fast_params(data: Path, *overrides: str) -> dict:
    return resolve_run("params.yaml", "smoke", overrides=[f"dataset.root={data}", *FAST, *overrides])


def weights(path: Path) -> dict:
    return checkpoint.load(path)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- schedule ---------------------------------------------------------------------------------------
def test_lr_warmup_then_steps():
    f = lambda it: lr_factor(it, 100, 10, 0.001, [0.5, 0.9], 0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.001)
    assert f(5) == pytest.approx(0.001 * 0.5 + 0.5)
    assert f(10) == f(49) == 1.0
    assert f(50) == pytest.approx(0.1)
    assert f(89) == pytest.approx(0.1)
    assert f(90) == pytest.approx(0.01)


# ---- checkpoints and run folders ------------------------------------------------------------------------
def test_corrupted_and_foreign_checkpoints_are_clear_errors(tmp_path):
    good = checkpoint.save(tmp_path / "good.pt", {"signature": {"arch": "mask_rcnn", "num_classes": 3},
                                                  "params": {}, "iteration": 1, "model": {}})
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="corrupted or truncated"):
        checkpoint.load(tmp_path / "cut.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a rog checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")
    state = checkpoint.load(good)
    with pytest.raises(checkpoint.CheckpointError, match="num_classes: checkpoint 3 vs model 5"):
        checkpoint.check_signature(state, {"arch": "mask_rcnn", "num_classes": 5})


def test_rng_state_round_trip():
    import random

    import numpy as np
    state = checkpoint.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_run_folder_refuses_another_experiment(tmp_path):
    params = {"dataset": {"root": "x"}, "model": {"arch": "a"}, "train": {"seed": 0, "threads": 1}}
    rundir.initialise(tmp_path / "run", params, {})
    assert rundir.check(tmp_path / "run", params)  # same experiment: fine
    # execution-only knobs do not make another experiment
    assert rundir.check(tmp_path / "run", {**params, "train": {"seed": 0, "threads": 2}})
    with pytest.raises(rundir.RunDirError, match="another experiment"):
        rundir.check(tmp_path / "run", {**params, "train": {"seed": 1, "threads": 1}})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(rundir.RunDirError, match="not empty"):
        rundir.check(tmp_path / "other", params)


# ---- diagnostics ----------------------------------------------------------------------------------------
def test_gradient_stats_split_by_source_and_target():
    c = 3
    logits = torch.randn(6, c + 1, requires_grad=True)
    labels = torch.tensor([0, 2, 3, 3, 1, 0])
    stats = diagnostics.GradientStats(c)
    obj_in, gap_in = stats.tap(logits, labels)
    obj = F.binary_cross_entropy_with_logits(obj_in, F.one_hot(labels, c + 1).float(), reduction="sum")
    gap = (gap_in[:, :c] ** 2).sum()  # any second loss: its gradient is 2 z
    (obj + gap).backward()
    target = F.one_hot(labels, c + 1)[:, :c].bool()
    grad_obj = (torch.sigmoid(logits) - F.one_hot(labels, c + 1)).detach()[:, :c].abs().double()
    grad_gap = (2 * logits.detach()[:, :c]).abs().double()
    for source, grad in (("objective", grad_obj), ("gap", grad_gap)):
        assert torch.allclose(stats.pos[source], (grad * target).sum(0))
        assert torch.allclose(stats.neg[source], (grad * ~target).sum(0))


# ---- training: kill and resume ----------------------------------------------------------------------
def test_killed_run_resumes_to_identical_weights(smoke_data, tmp_path):
    params = fast_params(smoke_data, "model.gap.enabled=true")
    straight = train(params, tmp_path / "straight", progress=False)
    # the killed run also keeps the model every 2 iterations: an execution knob, same run hash
    keeping = fast_params(smoke_data, "model.gap.enabled=true", "train.keep_every=2")
    assert rundir.params_hash(keeping) == rundir.params_hash(params)
    # killed after iteration 3: the last checkpoint is iteration 2, iteration 3 is logged but lost
    assert train(keeping, tmp_path / "killed", progress=False, stop_after=3) is None
    last = checkpoint.load(tmp_path / "killed" / "checkpoints" / "last.pt")
    assert last["iteration"] == 2
    kept = checkpoint.load(checkpoint.kept_path(tmp_path / "killed", 2))
    assert kept["iteration"] == 2 and "optimizer" not in kept and "rng" not in kept
    assert_same_weights(kept["model"], last["model"])
    resumed = train(keeping, tmp_path / "killed", progress=False)
    assert_same_weights(weights(straight), weights(resumed))
    # kept before the end (6 is model_final.pt); the plain run keeps nothing
    assert [i for i, _ in checkpoint.kept_checkpoints(tmp_path / "killed")] == [2, 4]
    assert checkpoint.kept_checkpoints(tmp_path / "straight") == []
    # buffers are part of it: GAP's online counts and BN statistics
    gap_counts = weights(resumed)["roi_heads.gap.class_counts"]
    assert gap_counts.sum() > 0
    # the loss log has each iteration once, equal to the uninterrupted run's
    logs = [[json.loads(line) for line in (tmp_path / d / "losses.jsonl").read_text().splitlines()]
            for d in ("straight", "killed")]
    assert [r["iteration"] for r in logs[1]] == list(range(1, 7))
    assert [r["loss"] for r in logs[0]] == [r["loss"] for r in logs[1]]
    # diagnostics written with the run, equal too
    diag = [json.loads((tmp_path / d / "diagnostics.json").read_text()) for d in ("straight", "killed")]
    assert diag[0]["gradients"] == diag[1]["gradients"]
    assert sum(diag[0]["gradients"]["gap"]["positive"]) > 0
    assert len(diag[0]["classifier_weight_norm"]) == diag[0]["num_classes"]
    # a finished run started again does nothing and changes nothing
    before = (tmp_path / "straight" / "model_final.pt").read_bytes()
    train(params, tmp_path / "straight", progress=False)
    assert (tmp_path / "straight" / "model_final.pt").read_bytes() == before


def test_resume_refuses_a_checkpoint_of_another_model(smoke_data, tmp_path):
    params = fast_params(smoke_data, "train.iterations=2")
    train(params, tmp_path / "run", progress=False)
    other = fast_params(smoke_data, "train.iterations=2", "model.arch=faster_rcnn")
    shutil.copy(tmp_path / "run" / "run.json", tmp_path / "run.json")
    # another experiment's folder: refused before anything is written
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(rundir.RunDirError, match="another experiment"):
        train(other, tmp_path / "run", progress=False)
    assert before == {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    # a checkpoint from another model planted in a folder that claims this experiment
    (tmp_path / "run2").mkdir()
    rundir.initialise(tmp_path / "run2", other, {})
    (tmp_path / "run2" / "checkpoints").mkdir()
    shutil.copy(tmp_path / "run" / "model_final.pt", tmp_path / "run2" / "checkpoints" / "last.pt")
    with pytest.raises(checkpoint.CheckpointError, match="another model: arch"):
        train(other, tmp_path / "run2", progress=False)


# ---- learning curve ---------------------------------------------------------------------------------
def test_learning_curve_evaluates_each_checkpoint_once_and_ends_at_the_final_model(smoke_data, tmp_path,
                                                                                     monkeypatch):
    from rog.engine import curve, inference

    run = tmp_path / "run"
    final = train(fast_params(smoke_data, "train.iterations=4", "train.keep_every=2"), run, progress=False)
    real, calls = inference.evaluate_checkpoint, []

    def counting(path, *args, **kwargs):
        calls.append((Path(path).name, kwargs.get("max_dets_list")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(inference, "evaluate_checkpoint", counting)
    points = curve.learning_curve(run, progress=False)
    assert [p["iteration"] for p in points] == [2, 4]
    assert sorted(calls) == [("iter_000002.pt", [20]), ("model_final.pt", [20])]  # main K only, no sweep
    assert set(points[0]) == {"iteration", "bbox", "segm"} and set(points[0]["segm"]) == set(curve.CURVE_KEYS)
    assert curve.learning_curve(run, progress=False) == points and len(calls) == 2  # the cache answers
    plain = real(final, tmp_path / "eval")  # the full evaluation, K sweep included
    assert points[-1] == curve.point(plain, 4)
    # the final model's metrics, when given, are used as they are
    assert curve.learning_curve(run, final_metrics=plain, progress=False) == points and len(calls) == 2
    path = curve.write_curve(tmp_path / "curve.json", points)
    assert json.loads(path.read_text()) == points
    with pytest.raises(FileNotFoundError, match="model_final.pt"):
        curve.learning_curve(tmp_path / "nothing", params=curve.run_params(run))

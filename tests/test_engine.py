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
from rog.engine.schedule import build_optimizer, lr_factor
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


def test_adamw_step_is_the_decoupled_formula():
    """One AdamW step from train params: w <- w (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps), with beta1 = momentum."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    tp = {"optimizer": "adamw", "lr": 0.1, "momentum": 0.8, "weight_decay": 0.5}
    opt = build_optimizer([w], tp)
    g = torch.tensor([0.3, -0.4])
    w.grad = g.clone()
    opt.step()
    m_hat, v_hat = g, g * g  # first step: bias corrections undo (1 - beta)
    expected = torch.tensor([1.0, -2.0]) * (1 - 0.1 * 0.5) - 0.1 * m_hat / (v_hat.sqrt() + 1e-8)
    assert torch.allclose(w.detach(), expected, atol=1e-6)
    assert isinstance(build_optimizer([w], dict(tp, optimizer="sgd")), torch.optim.SGD)
    with pytest.raises(ValueError, match="train.optimizer.*'adam'"):
        build_optimizer([w], dict(tp, optimizer="adam"))


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
    params = fast_params(smoke_data, "model.ranking.name=gap")
    straight = train(params, tmp_path / "straight", progress=False)
    # the killed run also keeps the model every 2 iterations: an execution knob, same run hash
    keeping = fast_params(smoke_data, "model.ranking.name=gap", "train.keep_every=2")
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
    gap_counts = weights(resumed)["roi_heads.ranking.class_counts"]
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


def test_workers_load_the_same_batches_and_resume_exactly(smoke_data, tmp_path):
    """train.workers > 0: a run killed and resumed with 2 workers ends with the in-process run's weights,
    random multi-scale resizing included (each sample's draw is seeded by its sampler position)."""
    scales = ["train.iterations=4", "dataset.resize_min_size=[80,96,112,128]", "dataset.resize_max_size=128"]
    params = fast_params(smoke_data, *scales)
    straight = train(params, tmp_path / "straight", progress=False)
    workers = fast_params(smoke_data, *scales, "train.workers=2")
    assert rundir.params_hash(workers) == rundir.params_hash(params)  # an execution knob
    assert train(workers, tmp_path / "killed", progress=False, stop_after=3) is None
    resumed = train(workers, tmp_path / "killed", progress=False)
    assert_same_weights(weights(straight), weights(resumed))


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


# ---- faults: corrupt checkpoints, a kill during the final save, torn logs, changed execution -------------
def flip_middle(path: Path) -> None:
    """Flip 16 bytes in the middle of a file, keeping its size (bit rot)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


def test_a_checkpoint_with_flipped_bytes_is_refused_by_name(tmp_path):
    path = checkpoint.save(tmp_path / "c.pt", {"signature": {}, "params": {}, "iteration": 1,
                                               "model": {"w": torch.arange(100000.0)}})
    assert checkpoint.load(path)["iteration"] == 1 and checkpoint.is_intact(path)
    size = path.stat().st_size
    flip_middle(path)
    assert path.stat().st_size == size
    with pytest.raises(checkpoint.CheckpointError, match=r"c\.pt: corrupted checkpoint: member .* CRC-32"):
        checkpoint.load(path)
    assert not checkpoint.is_intact(path) and not checkpoint.is_intact(tmp_path / "absent.pt")


def test_resume_falls_back_past_a_corrupt_last_checkpoint_and_after_a_torn_log_line(smoke_data, tmp_path, capsys):
    params = fast_params(smoke_data)
    straight = train(params, tmp_path / "straight", progress=False)
    run = tmp_path / "run"
    assert train(params, run, progress=False, stop_after=5) is None  # last.pt: 4, previous.pt: 2
    last, previous = run / "checkpoints" / "last.pt", run / "checkpoints" / "previous.pt"
    assert checkpoint.load(previous)["iteration"] == 2
    flip_middle(last)
    with open(run / "losses.jsonl", "a") as log:
        log.write('{"iteration": 6, "lr": 0.0')  # killed mid-line
    resumed = train(params, run, progress=False)
    err = capsys.readouterr().err
    assert f"{last}: corrupted checkpoint" in err and "resuming from" in err and "(iteration 2)" in err
    assert_same_weights(weights(straight), weights(resumed))
    assert (run / "checkpoints" / "last.pt.corrupt").is_file()  # set aside, not trained over
    assert not previous.exists()  # the fallback goes once the run has finished
    assert [json.loads(line)["iteration"] for line in (run / "losses.jsonl").read_text().splitlines()] == \
        list(range(1, 7))


def test_a_kill_during_the_final_save_is_repaired_by_the_rerun(smoke_data, tmp_path, monkeypatch, capsys):
    params = fast_params(smoke_data)
    straight = train(params, tmp_path / "straight", progress=False)
    real_save = checkpoint.save

    def killed_in_final_save(path, state, previous=None):
        path = Path(path)
        if path.name != "model_final.pt":
            return real_save(path, state, previous)
        (path.parent / f".{path.name}.tmp4242").write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt("killed")  # as SIGKILL would: nothing after this line runs

    monkeypatch.setattr(checkpoint, "save", killed_in_final_save)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(params, run, progress=False)
    assert not (run / "model_final.pt").exists() and checkpoint.load(run / "checkpoints" / "last.pt")["iteration"] == 6
    monkeypatch.setattr(checkpoint, "save", real_save)
    final = train(params, run, progress=False)
    err = capsys.readouterr().err
    assert "model_final.pt is missing; written again from the restored state of iteration 6" in err
    assert "removed 1 temp file(s)" in err and not list(run.glob(".*tmp*"))
    assert_same_weights(weights(straight), weights(final))
    # lost later, or rotted: written again the same way
    final.unlink()
    assert_same_weights(weights(straight), weights(train(params, run, progress=False)))
    flip_middle(final)
    assert_same_weights(weights(straight), weights(train(params, run, progress=False)))


def test_resume_refuses_another_thread_count_mid_run_but_a_finished_run_does_not_care(smoke_data, tmp_path):
    params = fast_params(smoke_data)
    run = tmp_path / "run"
    assert train(params, run, progress=False, stop_after=3) is None
    two = fast_params(smoke_data, "train.threads=2")
    assert rundir.params_hash(two) == rundir.params_hash(params)
    try:
        with pytest.raises(checkpoint.CheckpointError, match=r"started with threads 1.*resume with threads 2.*--set train.threads=1"):
            train(two, run, progress=False)
        final = train(params, run, progress=False)
        assert train(two, run, progress=False) == final  # finished: nothing is computed again
    finally:
        torch.set_num_threads(1)


class NaNAfter(torch.nn.Module):
    """Sigmoid CE whose loss turns NaN from its `after`-th training call on."""

    def __init__(self, num_classes: int, after: int):
        super().__init__()
        from rog.losses.cross_entropy import SigmoidCE

        self.inner, self.after, self.calls = SigmoidCE(num_classes), after, 0

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def loss(self, logits, labels):
        self.calls += 1
        out = self.inner.loss(logits, labels)
        return {k: v * float("nan") for k, v in out.items()} if self.calls >= self.after else out

    forward = loss


def test_a_non_finite_loss_stops_the_run_naming_iteration_and_term_and_keeps_the_checkpoint(smoke_data, tmp_path):
    from rog.data.build import build_dataset
    from rog.engine.trainer import NonFiniteLoss

    params = fast_params(smoke_data)
    classes = build_dataset(params["dataset"], "train").num_classes
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"iteration 3: non-finite training loss in loss_cls = nan .*"
                                            r"last\.pt \(iteration 2\) is kept"):
        train(params, run, objective=NaNAfter(classes, after=3), progress=False)
    assert checkpoint.load(run / "checkpoints" / "last.pt")["iteration"] == 2
    assert not (run / "model_final.pt").exists()

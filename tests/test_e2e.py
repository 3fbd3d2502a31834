"""End to end through the CLI: `python -m rog train` then `python -m rog evaluate` on LT-Glyphs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rog.cli import main
from rog.data.glyphs import generate
from rog.engine import checkpoint
from rog.provenance import git_state, lock_state
from test_engine import FAST, assert_same_weights, render_smoke, weights
from rog.config import resolve_run

RUN_FILES = ("params.yaml", "run.json", "losses.jsonl", "checkpoints/last.pt", "model_final.pt", "diagnostics.json")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return render_smoke(tmp_path_factory.getbasetemp())


def sets(data: Path, *extra: str) -> list[str]:
    out = []
    for s in (f"dataset.root={data}", *FAST, *extra):
        out += ["--set", s]
    return out


def train_cli(out: Path, data: Path, *extra: str) -> int:
    return main(["train", "--profile", "smoke", "--out", str(out), "--no-progress", *sets(data, *extra)])


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("e2e") / "run"
    assert train_cli(run, data, "model.ranking.name=gap") == 0
    return run


def test_train_and_evaluate_write_every_file(trained, tmp_path):
    for name in RUN_FILES:
        assert (trained / name).is_file(), name
    log = [json.loads(line) for line in (trained / "losses.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == list(range(1, 7))
    assert {"loss", "loss_cls", "loss_gap", "loss_box_reg", "loss_mask", "lr"} <= set(log[0])

    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(trained / "model_final.pt"), "--out", str(out),
                 "--no-progress"]) == 0
    bbox = json.loads((out / "results_bbox.json").read_text())
    segm = json.loads((out / "results_segm.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert bbox and len(bbox) == len(segm)
    per_image = {}
    for r in bbox:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
    assert max(per_image.values()) <= 20  # model.test.detections_per_img
    assert all("segmentation" in r and "counts" in r["segmentation"] for r in segm)
    for iou_type in ("bbox", "segm"):
        assert {"AP", "AP50", "APr", "APc", "APf"} <= set(metrics[iou_type]["metrics"])
        assert metrics[iou_type]["per_category"]
    assert metrics["checkpoint"]["iteration"] == 6
    # provenance (rog.provenance): training's in run.json, evaluation's (with its wall seconds) in metrics.json
    threads = checkpoint.load(trained / "model_final.pt")["params"]["train"]["threads"]
    for found in (json.loads((trained / "run.json").read_text())["provenance"], metrics["provenance"]):
        assert found["commit"] == git_state()["commit"] and found["lock_sha256"] == lock_state()["lock_sha256"]
        assert (found["torch"], found["device"], found["processes"]) == (torch.__version__, "cpu", 1)
        assert found["torch_threads"] == threads
    assert 0 < metrics["provenance"]["seconds"]["evaluate"] < 600


def test_same_params_and_seed_same_weights_and_metrics(trained, data, tmp_path):
    again = tmp_path / "again"
    assert train_cli(again, data, "model.ranking.name=gap") == 0
    assert_same_weights(weights(trained / "model_final.pt"), weights(again / "model_final.pt"))
    metrics = []
    for run in (trained, again):
        assert main(["evaluate", "--checkpoint", str(run / "model_final.pt"), "--out", str(run / "eval"),
                     "--no-progress"]) == 0
        metrics.append(json.loads((run / "eval" / "metrics.json").read_text()))
    assert metrics[0]["bbox"] == metrics[1]["bbox"] and metrics[0]["segm"] == metrics[1]["segm"]


@pytest.mark.parametrize("override, message", [
    ("model.objective.name=focal_nonsense", "model.objective.name = 'focal_nonsense': expected one of"),
    ("model.backbone.name=vgg16", "model.backbone.name = 'vgg16': expected one of"),
    ("model.ranking.name=focal", "model.ranking.name = 'focal': expected null or one of gap, ap_loss, rs_loss"),
    ("dataset.name=coco", "dataset.name = 'coco': expected one of lt_glyphs, lvis, openimages"),
])
def test_unknown_names_fail_clearly_and_write_nothing(data, tmp_path, capsys, override, message):
    assert train_cli(tmp_path / "run", data, override) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_another_experiments_folder_is_refused_untouched(trained, data, capsys):
    before = snapshot(trained)
    assert train_cli(trained, data, "model.ranking.name=null") == 2
    assert "another experiment" in capsys.readouterr().err
    assert snapshot(trained) == before


def test_bad_checkpoints_fail_clearly_and_write_nothing(trained, data, tmp_path, capsys):
    final = trained / "model_final.pt"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(final.read_bytes()[:1000])
    assert main(["evaluate", "--checkpoint", str(cut), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "corrupted or truncated" in capsys.readouterr().err
    # the checkpoint's model differs from the one the params describe
    assert main(["evaluate", "--checkpoint", str(final), "--out", str(tmp_path / "b"), "--no-progress",
                 "--set", "model.arch=faster_rcnn"]) == 2
    assert "another model: arch" in capsys.readouterr().err
    # a dataset with another number of classes
    glyphs = resolve_run("params.yaml", "smoke", overrides=["dataset.glyphs.num_train=4",
                                                            "dataset.glyphs.num_val=2"])["dataset"]["glyphs"]
    generate(glyphs, tmp_path / "small")
    assert main(["evaluate", "--checkpoint", str(final), "--out", str(tmp_path / "c"), "--no-progress",
                 "--set", f"dataset.root={tmp_path / 'small'}"]) == 2
    assert "classes, the dataset" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))
    assert checkpoint.load(final)["iteration"] == 6  # untouched


def test_evaluate_k_and_boxes_only_match_a_plain_evaluation_of_the_boxes(trained, tmp_path, capsys):
    from rog.engine.inference import evaluate_checkpoint

    final = trained / "model_final.pt"
    plain = evaluate_checkpoint(final, tmp_path / "plain")  # masks, the run's own K = 20
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(final), "--out", str(tmp_path / "budget"), "--k", "20", "5",
                 "--boxes-only", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "budget" / "metrics.json").read_text())
    assert "segm" not in metrics and sorted(metrics["bbox"]["max_dets_sweep"], key=int) == ["5", "20"]
    # same boxes and scores: skipping the mask branch changes neither
    assert metrics["bbox"]["metrics"] == plain["bbox"]["metrics"]
    assert json.loads((tmp_path / "budget" / "results_segm.json").read_text()) == []
    k20 = metrics["bbox"]["max_dets_sweep"]["20"]["metrics"]
    assert f"| bbox | 20 | {100 * k20['AP']:.1f} |" in capsys.readouterr().out


def test_mask_budget_keeps_more_boxes_and_the_main_metrics_of_a_plain_evaluation(trained, tmp_path, capsys):
    """Table 3's single pass: 40 boxes per image, masks for the top 20 (= evaluate.max_dets): the main
    box and mask metrics equal the plain evaluation's (20 boxes, a mask each); segm's sweep stops at 20."""
    from rog.engine.inference import evaluate_checkpoint

    final = trained / "model_final.pt"
    plain = evaluate_checkpoint(final, tmp_path / "plain")  # K = 20, every detection with a mask
    assert main(["evaluate", "--checkpoint", str(final), "--out", str(tmp_path / "wide"), "--no-progress", "--set",
                 "model.test.detections_per_img=40", "model.test.masks_per_img=20", "model.test.score_thresh=0.0",
                 "evaluate.max_dets_sweep=[5,20,40]"]) == 0
    metrics = json.loads((tmp_path / "wide" / "metrics.json").read_text())
    for iou_type in ("bbox", "segm"):
        assert metrics[iou_type]["metrics"] == plain[iou_type]["metrics"], iou_type
    assert list(metrics["bbox"]["max_dets_sweep"]) == ["5", "20", "40"]
    assert list(metrics["segm"]["max_dets_sweep"]) == ["5", "20"]
    assert metrics["bbox"]["max_results_per_image"] == 40 and metrics["segm"]["max_results_per_image"] == 20
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(final), "--out", str(tmp_path / "bad"), "--no-progress", "--set",
                 "model.test.masks_per_img=10"]) == 2
    assert "model.test.masks_per_img = 10 < evaluate.max_dets = 20" in capsys.readouterr().err


def test_norcal_build_option_scores_as_wrapping_the_trained_objective(trained, data):
    """The oracle: the trained model with its objective wrapped in rog.losses.calibration.NorCal after
    loading (how a post-hoc calibration is usually applied); the build option must give the same detections."""
    import torch

    from rog.data.build import build_dataset
    from rog.engine.inference import load_model, predict
    from rog.losses.calibration import NorCal

    final = trained / "model_final.pt"
    state = checkpoint.load(final)
    params = resolve_run("params.yaml", "smoke", overrides=sets(data)[1::2] + ["model.ranking.name=gap"])
    dataset = build_dataset(params["dataset"], "val", train=False)
    oracle, _ = load_model(final, dataset.num_classes, params=params, state=state)
    heads = oracle.roi_heads
    heads.objective = NorCal(heads.objective, checkpoint.counts_from_state(state), gamma=0.7)
    calibrated = dict(params, evaluate=dict(params["evaluate"], norcal_gamma=0.7))
    built, _ = load_model(final, dataset.num_classes, params=calibrated, state=state)
    plain, _ = load_model(final, dataset.num_classes, params=params, state=state)
    ours, theirs, before = (predict(m, dataset)[0] for m in (built, oracle, plain))
    assert ours == theirs and ours != before
    assert set(built.state_dict()) == set(plain.state_dict())  # the option adds no saved state
    assert torch.equal(built.roi_heads.score_shift, 0.7 * checkpoint.counts_from_state(state).image_count
                       .double().clamp(min=1).log())

"""OpenImages in its real format (issue 27): conversion, cache, bad inputs, the oid_r101_2x profile, and
`rog train` + `rog evaluate` end to end on a generated fixture (tests/oid_fixture.py), boxes only.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from oid_fixture import dataset_overrides, write_openimages
from rog.cli import main
from rog.config import ParamsError, resolve_run
from rog.data import openimages
from rog.data.build import build_dataset, dataset_paths
from rog.pipeline.registry import read_params, run_names, validate

ROOT = Path(__file__).resolve().parents[1]
TRAIN_BOXES = "challenge-2019-train-detection-bbox.csv"
VAL_BOXES = "challenge-2019-validation-detection-bbox.csv"
FAST = ["train.iterations=6", "train.batch_size=2", "train.checkpoint_every=3", "train.warmup_iterations=2",
        "model.arch=faster_rcnn", "dataset.with_masks=false", "evaluate.masks=false",
        "model.rpn.post_nms_top_n_train=64", "model.rpn.post_nms_top_n_test=32", "model.roi.batch_size_per_image=32",
        "model.test.detections_per_img=20", "evaluate.max_dets=20", "evaluate.max_dets_sweep=[10,20]"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory) -> Path:
    return write_openimages(tmp_path_factory.mktemp("oid") / "openimages")


def fresh_copy(fixture_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "openimages"
    shutil.copytree(fixture_root, root, ignore=shutil.ignore_patterns("converted"))
    return root


def dataset_params(root: Path) -> dict:
    return resolve_run(ROOT / "params.yaml", "smoke", overrides=dataset_overrides(root) + FAST)["dataset"]


def sets(root: Path, *extra: str) -> list[str]:
    return [arg for s in (*dataset_overrides(root), *FAST, *extra) for arg in ("--set", s)]


def test_conversion_keeps_classes_hierarchy_boxes_and_verified_labels(fixture_root, tmp_path):
    root = fresh_copy(fixture_root, tmp_path)
    path, image_root = dataset_paths(dataset_params(root), "val")
    assert path.parent == root / "converted" and path.name.startswith("val-")
    assert image_root == root / "images" / "validation"
    gt = json.loads(path.read_text())
    cats = {c["name"]: c for c in gt["categories"]}
    assert [c["id"] for c in gt["categories"]] == list(range(1, 8))          # the description file's order
    assert cats["Cat"]["ancestor_ids"] == [1, 2] and cats["Cat"]["parent_ids"] == [2]  # Animal -> Mammal -> Cat
    assert cats["Car"]["ancestor_ids"] == [5] and cats["Boat"]["ancestor_ids"] == []
    # training counts (the train CSV, whichever split): Car 5 boxes on 4 images (one group-of), Cat 4 on 4
    assert (cats["Car"]["instance_count"], cats["Car"]["image_count"]) == (5, 4)
    assert (cats["Cat"]["instance_count"], cats["Cat"]["image_count"]) == (4, 4)
    # EQLv2's groups by instance count: Animal 0, Vehicle 0 | Mammal 1, Boat 1 | Dog 2 | Cat 4 | Car 5
    assert {n: c["group"] for n, c in cats.items()} == {"Animal": 1, "Vehicle": 1, "Mammal": 2, "Boat": 2,
                                                       "Dog": 3, "Cat": 4, "Car": 5}
    assert {c["frequency"] for c in gt["categories"]} == {"r"}               # at most 4 training images each
    images = {i["oid_image_id"]: i for i in gt["images"]}
    assert sorted(images) == ["va000001", "va000002", "va000003", "va000004"]  # va000004: a verified negative only
    assert (images["va000001"]["width"], images["va000001"]["height"]) == (96, 64)
    assert images["va000001"]["pos_category_ids"] == [3, 6] and images["va000001"]["neg_category_ids"] == [7]
    assert images["va000004"]["neg_category_ids"] == [7]
    first = gt["annotations"][0]  # va000001 Cat: X 0.05-0.40, Y 0.10-0.70 of 96 x 64 px
    assert first["bbox"] == pytest.approx([4.8, 6.4, 33.6, 38.4]) and first["row"] == 2
    assert [a["is_group_of"] for a in gt["annotations"]] == [0, 0, 0, 1]
    assert {"is_occluded", "is_truncated", "is_depiction", "is_inside"} <= set(first)


def test_training_dataset_gives_pixel_boxes_and_contiguous_labels(fixture_root, tmp_path):
    dataset = build_dataset(dataset_params(fresh_copy(fixture_root, tmp_path)), "train")
    assert len(dataset) == 8 and dataset.num_classes == 7
    # tr000009 has verified labels but no box (and no file): not a training image, not an error
    assert [i["oid_image_id"] for i in dataset.lvis["images"]] == [f"tr00000{k}" for k in range(1, 9)]
    image, target = dataset[0]  # tr000001: Cat (label 2), Car (label 5)
    assert tuple(image.shape) == (3, 64, 96)
    assert target["labels"].tolist() == [2, 5]
    assert target["boxes"][0].tolist() == pytest.approx([4.8, 6.4, 38.4, 44.8], abs=1e-4)


def test_a_rerun_reads_the_cache_and_a_changed_input_converts_again(fixture_root, tmp_path, monkeypatch):
    root = fresh_copy(fixture_root, tmp_path)
    params = dataset_params(root)
    first, _ = dataset_paths(params, "val")
    written = first.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the inputs are unchanged")

    monkeypatch.setattr(openimages, "convert", no_conversion)
    assert dataset_paths(params, "val")[0] == first and first.stat().st_mtime_ns == written
    monkeypatch.undo()
    with open(root / VAL_BOXES, "a") as f:
        f.write("va000002,xclick,/m/0cat,1,0.1,0.2,0.1,0.2,0,0,0,0,0\n")
    second, _ = dataset_paths(params, "val")
    assert second != first and len(json.loads(second.read_text())["annotations"]) == 5


def test_image_sizes_come_from_the_metadata_file_when_one_is_given(fixture_root, tmp_path):
    root = fresh_copy(fixture_root, tmp_path)
    (root / "validation_sizes-00000-of-00001.csv").write_text(
        "ImageID,Width,Height\nva000001,192,128\nva000002,96,64\nva000003,96,64\nva000004,96,64\n")
    shutil.rmtree(root / "images" / "validation")  # not read: the sizes file says them
    gt = json.loads(dataset_paths(dataset_params(root), "val")[0].read_text())
    assert (gt["images"][0]["width"], gt["images"][0]["height"]) == (192, 128)
    assert gt["annotations"][0]["bbox"] == pytest.approx([9.6, 12.8, 67.2, 76.8])


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text
    path.write_text("".join(lines))


def unknown_label(root: Path) -> None:
    replace_line(root / TRAIN_BOXES, 4, "tr000002,xclick,/m/0zebra,1,0.10,0.45,0.20,0.80,0,0,0,0,0\n")


def outside_unit(root: Path) -> None:
    replace_line(root / TRAIN_BOXES, 5, "tr000002,xclick,/m/0dog,1,0.55,1.20,0.10,0.60,0,0,0,0,0\n")


def min_above_max(root: Path) -> None:
    replace_line(root / TRAIN_BOXES, 6, "tr000003,xclick,/m/0car,1,0.50,0.05,0.40,0.95,0,0,0,0,0\n")


def missing_image(root: Path) -> None:
    (root / "images" / "train" / "tr000005.jpg").unlink()


def unknown_class_in_hierarchy(root: Path) -> None:
    tree = json.loads((root / "challenge-2019-label500-hierarchy.json").read_text())
    tree["Subcategory"][1]["Subcategory"].append({"LabelName": "/m/0truck"})
    (root / "challenge-2019-label500-hierarchy.json").write_text(json.dumps(tree))


def truncated_csv(root: Path) -> None:
    text = (root / TRAIN_BOXES).read_text()
    (root / TRAIN_BOXES).write_text(text[:text.rindex("\n", 0, len(text) - 1) + 25])  # the last row cut short


@pytest.mark.parametrize("corrupt, named", [
    (unknown_label, [TRAIN_BOXES, "row 4", "unknown label id '/m/0zebra'"]),
    (outside_unit, [TRAIN_BOXES, "row 5", "XMax 1.20 is outside [0, 1]"]),
    (min_above_max, [TRAIN_BOXES, "row 6", "XMin 0.50 > XMax 0.05"]),
    (missing_image, ["tr000005.jpg: image file not found", f"{TRAIN_BOXES} row 9"]),
    (unknown_class_in_hierarchy, ["challenge-2019-label500-hierarchy.json", "root.Subcategory[1].Subcategory[1]",
                                  "'/m/0truck', which is not a class of"]),
    (truncated_csv, [TRAIN_BOXES, "row 14", "3 fields where the header has 13"]),
])
def test_bad_input_exits_2_with_one_line_naming_file_and_row_and_writes_nothing(
        fixture_root, tmp_path, capsys, corrupt, named):
    root = fresh_copy(fixture_root, tmp_path)
    corrupt(root)
    out = tmp_path / "run"
    assert main(["train", "--profile", "smoke", "--out", str(out), "--no-progress", *sets(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rog train: ") and err.count("\n") == 1, err
    for text in named:
        assert text in err, err
    assert not out.exists() and not (root / "converted").exists()


def test_oid_r101_2x_is_the_papers_setting_and_its_experiments_stay_out_of_the_pipeline(capsys):
    params = resolve_run(ROOT / "params.yaml", "oid_r101_2x", "oid_eqlv2_gap")
    model, train, dataset = params["model"], params["train"], params["dataset"]
    assert (model["arch"], model["backbone"]["name"], model["backbone"]["pretrained"]) == \
        ("faster_rcnn", "resnet101_fpn", True)
    assert (model["objective"]["name"], model["ranking"]["name"], model["ranking"]["weight"]) == ("eqlv2", "gap", 1.0)
    assert model["ranking"]["params"] == {}  # GAP's defaults: delta 0.5, gamma 1.0
    assert (train["lr"], train["batch_size"], train["iterations"], train["momentum"], train["weight_decay"]) == \
        (0.02, 16, 180000, 0.9, 1e-4)
    assert [round(s * 24) for s in train["lr_steps"]] == [16, 22]  # epochs 16 and 22 of 24
    assert (dataset["name"], dataset["with_masks"], dataset["sampler"]["kind"]) == ("openimages", False, "random")
    assert (model["test"]["score_thresh"], model["test"]["detections_per_img"]) == (1e-4, 300)
    assert params["evaluate"]["masks"] is False
    assert resolve_run(ROOT / "params.yaml", "oid_r101_2x", "oid_eqlv2")["model"]["ranking"]["name"] is None
    with pytest.raises(ParamsError, match="belongs to profile oid_r101_2x"):
        resolve_run(ROOT / "params.yaml", "default", "oid_eqlv2_gap")
    registry = read_params(ROOT / "params.yaml")
    validate(registry)
    assert not {"oid_eqlv2", "oid_eqlv2_gap"} & set(run_names(registry))
    assert "oid_eqlv2" not in (ROOT / "dvc.yaml").read_text()
    assert main(["params", "--profile", "oid_r101_2x", "--experiment", "oid_eqlv2_gap", "--section", "model"]) == 0
    assert "name: resnet101_fpn" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained(fixture_root, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("oid_run") / "run"
    assert main(["train", "--profile", "smoke", "--out", str(run), "--no-progress",
                 *sets(fixture_root, "model.objective.name=eqlv2", "model.ranking.name=gap")]) == 0
    return run


def test_train_and_evaluate_end_to_end_report_groups_and_the_challenge_metric(trained, fixture_root, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(trained / "model_final.pt"), "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "results_segm.json").read_text()) == [] and "segm" not in metrics
    assert json.loads((out / "results_bbox.json").read_text())
    oid = metrics["openimages"]
    assert oid["bbox"]["APbbox"] == metrics["bbox"]["metrics"]["AP"]
    assert [g["category_ids"] for g in oid["groups"]] == [[1, 5], [2, 7], [4], [3], [6]]
    challenge = oid["challenge"]
    assert {f"AP{g}" for g in range(1, 6)} <= set(oid["bbox"]) and {"AP50", "AP1", "AP5"} <= set(challenge)
    # validation boxes expanded up the hierarchy: Cat, Dog -> Mammal, Animal; the group-of Car -> Vehicle
    num_gt = {p["name"]: p["num_gt"] for p in challenge["per_category"]}
    assert num_gt == {"Animal": 2, "Mammal": 2, "Cat": 1, "Dog": 1, "Vehicle": 2, "Car": 2, "Boat": 0}
    assert all(0 <= p["AP"] <= 1 for p in challenge["per_category"] if p["name"] != "Boat")
    assert [p["AP"] for p in challenge["per_category"] if p["name"] == "Boat"] == [-1.0]
    # the training split's conversion was made once and read again by the evaluation
    assert len(list((fixture_root / "converted").glob("train-*.json"))) == 1


def test_evaluate_refuses_a_bad_validation_file_in_one_line_and_writes_nothing(trained, fixture_root, tmp_path, capsys):
    root = fresh_copy(fixture_root, tmp_path)
    replace_line(root / "challenge-2019-validation-detection-human-imagelabels.csv", 3,
                 "va000001,verification,/m/0car,0.5\n")
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(trained / "model_final.pt"), "--out", str(out), "--no-progress",
                 "--set", f"dataset.root={root}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "challenge-2019-validation-detection-human-imagelabels.csv, row 3: Confidence" in err
    assert not out.exists() and not list((root / "converted").glob("val-*"))


def test_table6_page_names_its_data_and_shows_openimages_runs_only_when_present(tmp_path):
    from rog.report.openimages import openimages_section
    from rog.report.results import paper_numbers

    definition = read_params(ROOT / "params.yaml")["tables"]["table6"]
    paper = paper_numbers()["table6"]
    absent = "\n\n".join(openimages_section(definition, paper, tmp_path))
    assert "OpenImages (the 2019 challenge's 500 classes" in absent and "LT-Glyphs" in absent
    assert "Skipped: none of results/openimages/oid_eqlv2/metrics.json" in absent
    run = tmp_path / "results" / "openimages" / "oid_eqlv2_gap"
    run.mkdir(parents=True)
    groups = {f"AP{g}": g / 10 for g in range(1, 6)}
    (run / "metrics.json").write_text(json.dumps({"openimages": {
        "challenge": {"AP50": 0.583, **groups}, "bbox": {"APbbox": 0.31, **groups}}}))
    shown = "\n\n".join(openimages_section(definition, paper, tmp_path))
    assert "Skipped" not in shown
    assert "| ROG (EQLv2 + GAP) | paper (challenge AP@0.5) | 58.2 | 54.8 | 59.2 | 60.6 | 58.0 | 58.5 |" in shown
    assert "| ROG (EQLv2 + GAP) | ours `oid_eqlv2_gap`, challenge AP@0.5 | 58.3 | 10.0 | 20.0 | 30.0 | 40.0 | 50.0 |" in shown
    assert "| ROG (EQLv2 + GAP) | ours `oid_eqlv2_gap`, COCO-style AP 0.50:0.95 | 31.0 |" in shown
    assert "| EQLv2 | ours `oid_eqlv2`: no metrics.json |" in shown

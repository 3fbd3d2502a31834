"""LT-Glyphs: LVIS format, statistics, determinism, masks against boxes, the CLI."""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from data_helpers import ROOT, ensure_snapshot, tiny_glyph_params
from rog.losses.counts import CategoryCounts, frequency_group
from rog.data.glyphs import GlyphParamsError, generate, split_text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("glyphs")
    stats = generate(tiny_glyph_params(), out)
    return out, stats


def _load(path):
    return json.loads(path.read_text())


def test_lvis_api_reads_both_splits(tiny):
    from rog.evaluation.lvis_compat import LVIS

    out, stats = tiny
    train = LVIS(str(out / "train.json"))
    val = LVIS(str(out / "val.json"))
    assert len(train.get_img_ids()) == stats["train_images"] == 40
    assert len(val.get_ann_ids()) == stats["val_annotations"]
    assert train.get_cat_ids() == val.get_cat_ids()


def test_schema_fields(tiny):
    out, _ = tiny
    data = _load(out / "train.json")
    cat_ids = {c["id"] for c in data["categories"]}
    for img in data["images"]:
        assert {"id", "file_name", "height", "width", "neg_category_ids", "not_exhaustive_category_ids"} <= set(img)
        assert (out / img["file_name"]).is_file()
        present = {a["category_id"] for a in data["annotations"] if a["image_id"] == img["id"]}
        assert set(img["neg_category_ids"]) == cat_ids - present  # exhaustive annotation
    for cat in data["categories"]:
        assert {"id", "name", "synonyms", "def", "frequency", "image_count", "instance_count"} <= set(cat)
    for ann in data["annotations"][:50]:
        assert isinstance(ann["segmentation"]["counts"], str)


def test_declared_statistics_equal_recount(tiny):
    out, _ = tiny
    data = _load(out / "train.json")
    images_of, instances = defaultdict(set), defaultdict(int)
    for a in data["annotations"]:
        images_of[a["category_id"]].add(a["image_id"])
        instances[a["category_id"]] += 1
    for cat in data["categories"]:
        n = len(images_of[cat["id"]])
        assert n >= 1, "every category comes from the training split"
        assert cat["image_count"] == n
        assert cat["instance_count"] == instances[cat["id"]]
        assert cat["frequency"] == ("r" if n <= 10 else "c" if n <= 100 else "f")
    # val carries the train statistics, as LVIS v1 val does
    assert _load(out / "val.json")["categories"] == data["categories"]


def test_every_category_has_min_val_images(tiny):
    out, stats = tiny
    val = _load(out / "val.json")
    images_of = defaultdict(set)
    for a in val["annotations"]:
        images_of[a["category_id"]].add(a["image_id"])
    assert all(len(images_of[c["id"]]) >= 2 for c in val["categories"])
    assert stats["min_val_images_per_category"] >= 2


def test_masks_agree_with_boxes_and_areas(tiny):
    out, _ = tiny
    data = _load(out / "val.json")
    for a in data["annotations"]:
        rle = dict(a["segmentation"], counts=a["segmentation"]["counts"].encode())
        mask = mask_utils.decode(rle)
        ys, xs = np.nonzero(mask)
        x, y, w, h = a["bbox"]
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        assert mask.sum() == a["area"] >= 6


def test_same_params_byte_identical_other_seed_differs(tiny, tmp_path):
    out, _ = tiny
    again = tmp_path / "again"
    generate(tiny_glyph_params(), again)
    for name in ("train.json", "val.json", "stats.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    files = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.png"))
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)
    generate(tiny_glyph_params(num_train=3, num_val=1, min_val_images=0), again)  # re-render, smaller
    assert len(list((again / "train").glob("*.png"))) == 3  # no stale PNGs of the larger render
    other = tmp_path / "other"
    generate(tiny_glyph_params(seed=1), other)
    assert (other / "train.json").read_bytes() != (out / "train.json").read_bytes()
    assert (other / "train" / files[0].name).read_bytes() != (out / "train" / files[0].name).read_bytes()


def test_train_and_val_text_disjoint():
    text = "abcdefghij" * 10
    train, val = split_text(text, 0.2)
    assert train + val == text and len(val) == 20


def test_crowded_images_reach_many_glyphs(tmp_path):
    stats = generate(tiny_glyph_params(num_train=6, num_val=0, min_val_images=0,
                                       crowded={"fraction": 1.0, "glyph_size": [24, 26], "line_gap": 0}),
                     tmp_path)
    assert stats["train_annotations"] / 6 >= 20


def test_category_counts_from_lvis_and_groups():
    data = {"categories": [{"id": 7}, {"id": 3}],
            "annotations": [{"image_id": 1, "category_id": 3}, {"image_id": 1, "category_id": 3},
                            {"image_id": 2, "category_id": 7}],
            "images": [{"id": 1}, {"id": 2}, {"id": 3}]}
    counts = CategoryCounts.from_lvis(data)
    assert counts.instance_count.tolist() == [2, 1] and counts.image_count.tolist() == [1, 1]
    assert counts.num_images == 2 and counts.frequency == ("r", "r")
    assert [frequency_group(n) for n in (1, 10, 11, 100, 101)] == ["r", "r", "c", "c", "f"]


def test_bad_params_fail_clearly(tmp_path):
    params = tiny_glyph_params()
    del params["fonts"]
    with pytest.raises(GlyphParamsError, match="fonts"):
        generate(params, tmp_path)
    with pytest.raises(FileNotFoundError, match="dvc pull"):
        generate(tiny_glyph_params(snapshot=str(tmp_path / "nowhere")), tmp_path)
    assert not (tmp_path / "train.json").exists()


def test_cli_smoke(tmp_path):
    from rog.cli import main

    code = main(["dataset", "--params", str(ROOT / "params.yaml"), "--profile", "smoke", "--no-progress",
                 "--out", str(tmp_path), "--set", "dataset.glyphs.num_train=8", "--set", "dataset.glyphs.num_val=2",
                 "--set", f"dataset.glyphs.snapshot={ensure_snapshot()}"])
    assert code == 0
    assert len(_load(tmp_path / "train.json")["images"]) == 8
    assert main(["dataset", "--params", str(ROOT / "params.yaml"), "--out", str(tmp_path),
                 "--set", "dataset.glyphs.no_such_key=1"]) == 2


def test_ground_truth_as_detections_scores_ap_one(tiny):
    from rog.evaluation.lvis_compat import LVIS, LVISEval, LVISResults

    out, _ = tiny
    gt = LVIS(str(out / "val.json"))
    anns = _load(out / "val.json")["annotations"]
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
             "segmentation": a["segmentation"]} for a in anns]
    for iou_type in ("bbox", "segm"):
        evaluation = LVISEval(gt, LVISResults(gt, dets, max_dets=300), iou_type)
        evaluation.run()
        assert evaluation.results["AP"] == pytest.approx(1.0)

"""LVIS evaluation on a hand-built ground truth: known numbers, results records, files, bad input."""
import json
import math

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from rog.evaluation import (
    detections_to_results,
    encode_masks,
    evaluate,
    read_results_json,
    top_k_per_image,
    write_results_json,
)
from rog.evaluation.lvis_compat import LVISResults, patch_numpy_for_lvis

H = W = 100
BACKENDS = ["lvis", "fast"]


def rect_rle(x, y, w, h):
    m = np.zeros((1, H, W), dtype=bool)
    m[0, y:y + h, x:x + w] = True
    return encode_masks(m)[0]


def gt_ann(ann_id, image_id, category_id, x, y, w, h):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": [x, y, w, h],
            "area": float(w * h), "segmentation": rect_rle(x, y, w, h)}


# Image 1: a frequent (cat 1) and a common (cat 2) object.      negatives: cat 3
# Image 2: a rare object (cat 3), not exhaustively annotated.    negatives: cat 1
# Image 3: a second cat-1 object.                                negatives: cat 2
# Image 4: nothing annotated.                                    negatives: cat 1
# Category 4 (common) has no ground truth anywhere. Areas: 400, 900 (small), 1600, 400; none large.
GT_ANNS = [gt_ann(1, 1, 1, 10, 10, 20, 20), gt_ann(2, 1, 2, 50, 50, 30, 30),
           gt_ann(3, 2, 3, 0, 0, 40, 40), gt_ann(4, 3, 1, 60, 10, 20, 20)]


@pytest.fixture(scope="module")
def gt_path(tmp_path_factory):
    images = [
        {"id": 1, "height": H, "width": W, "neg_category_ids": [3], "not_exhaustive_category_ids": []},
        {"id": 2, "height": H, "width": W, "neg_category_ids": [1], "not_exhaustive_category_ids": [3]},
        {"id": 3, "height": H, "width": W, "neg_category_ids": [2], "not_exhaustive_category_ids": []},
        {"id": 4, "height": H, "width": W, "neg_category_ids": [1], "not_exhaustive_category_ids": []},
    ]
    categories = [{"id": 1, "name": "one", "frequency": "f", "image_count": 500},
                  {"id": 2, "name": "two", "frequency": "c", "image_count": 50},
                  {"id": 3, "name": "three", "frequency": "r", "image_count": 5},
                  {"id": 4, "name": "four", "frequency": "c", "image_count": 20}]
    path = tmp_path_factory.mktemp("gt") / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": GT_ANNS, "categories": categories}))
    return path


def det(image_id, category_id, bbox, score):
    x, y, w, h = bbox
    return {"image_id": image_id, "category_id": category_id, "bbox": list(map(float, bbox)), "score": score,
            "segmentation": rect_rle(x, y, w, h)}


def perfect():
    return [det(a["image_id"], a["category_id"], a["bbox"], 0.9) for a in GT_ANNS]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_detections_score_one(gt_path, iou_type, backend):
    m = evaluate(gt_path, perfect(), iou_type, backend=backend)
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APr", "APc", "APf"):
        assert m[name] == pytest.approx(1.0), name
    assert m["APl"] == -1  # no large ground truth: lvis-api's "undefined"


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_federated_case(gt_path, backend):
    """Every rule of the protocol in one case, worked out by hand:

    cat 1: TP (0.9), FP on image 2 where cat 1 is a listed negative (0.8), TP (0.7).
           precision/recall 1/.5, .5/.5, .67/1 -> interpolated 1 for the 51 recall points up to
           0.50 and 2/3 for the 50 above: AP = (51 + 50 * 2/3) / 101.
    cat 2: FP on image 3 (negative there) at 0.95, then the TP: precision .5 at every recall: 0.5.
    cat 3: an unmatched detection of a not-exhaustive category (image 2) is ignored: AP 1.
    cat 4 detected on image 1 (neither annotated nor negative there): dropped, cat 4 stays -1.
    """
    dets = perfect()
    dets[0]["score"], dets[3]["score"] = 0.9, 0.7  # the two cat-1 TPs
    dets += [det(2, 1, [60, 60, 20, 20], 0.8), det(3, 2, [10, 60, 30, 30], 0.95),
             det(2, 3, [60, 60, 20, 20], 0.99), det(1, 4, [10, 10, 20, 20], 0.99)]
    ap1 = (51 + 50 * 2 / 3) / 101
    m = evaluate(gt_path, dets, "bbox", backend=backend)
    assert m["APf"] == pytest.approx(ap1, abs=1e-12)
    assert m["APc"] == pytest.approx(0.5, abs=1e-12)  # cat 4 has no ground truth: not averaged
    assert m["APr"] == pytest.approx(1.0, abs=1e-12)
    assert m["AP"] == pytest.approx((ap1 + 0.5 + 1.0) / 3, abs=1e-12)
    assert m["AP50"] == m["AP75"] == pytest.approx(m["AP"], abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_dets_cuts_per_image_across_categories(gt_path, backend):
    """Image 1 gets 2 perfect detections under 3 higher-scored misses: K=3 loses both TPs."""
    misses = [det(1, 1, [80, 80, 10, 10], 0.99), det(1, 2, [0, 80, 10, 10], 0.98),
              det(1, 1, [80, 0, 10, 10], 0.97)]
    dets = perfect() + misses
    assert evaluate(gt_path, dets, "bbox", max_dets=5, backend=backend)["APc"] == pytest.approx(0.5)
    assert evaluate(gt_path, dets, "bbox", max_dets=3, backend=backend)["APc"] == 0.0
    # cat 1 keeps its image-3 TP (image 3 has only one detection), loses image 1's
    assert 0 < evaluate(gt_path, dets, "bbox", max_dets=3, backend=backend)["APf"] < 1


def test_top_k_keeps_the_k_highest_per_image_like_lvis_api(gt_path):
    rng = np.random.default_rng(0)
    recs = [{"image_id": int(rng.integers(1, 5)), "category_id": int(rng.integers(1, 5)),
             "bbox": [1.0, 1.0, 5.0, 5.0], "score": float(np.round(rng.random(), 1))} for _ in range(200)]
    for i, r in enumerate(recs):
        r["n"] = i
    for k in (1, 7, 60, 300):
        kept = top_k_per_image(recs, k)
        for img in range(1, 5):
            mine = [r for r in recs if r["image_id"] == img]
            got = [r for r in kept if r["image_id"] == img]
            assert len(got) == min(k, len(mine))
            if len(got):
                assert min(r["score"] for r in got) >= max(
                    [r["score"] for r in mine if r not in got], default=-1)
        # same records in the same order as lvis-api's own cut (order decides ties)
        lvis_kept = LVISResults.limit_dets_per_image(None, [dict(r) for r in recs], k)
        assert [r["n"] for r in kept] == [r["n"] for r in lvis_kept]
    assert len(top_k_per_image(recs, -1)) == len(recs)


def test_detections_to_results_records():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 5.0, 5.0]])
    masks = torch.zeros(2, 1, 64, 48)
    masks[0, 0, 20:60, 10:30] = 0.8
    masks[1, 0, 0:5, 0:5] = 0.4  # below 0.5: empty mask
    recs = detections_to_results(7, boxes, torch.tensor([0.9, 0.2]), torch.tensor([2, 0]),
                                 {0: 11, 1: 12, 2: 13}, masks=masks)
    assert [r["category_id"] for r in recs] == [13, 11]
    assert recs[0]["bbox"] == [10.0, 20.0, 20.0, 40.0] and recs[0]["image_id"] == 7
    assert recs[0]["score"] == pytest.approx(0.9)
    assert isinstance(recs[0]["segmentation"]["counts"], str)
    decoded = mask_utils.decode({"size": recs[0]["segmentation"]["size"],
                                 "counts": recs[0]["segmentation"]["counts"].encode()})
    assert decoded.shape == (64, 48) and decoded.sum() == 40 * 20 and decoded[20:60, 10:30].all()
    assert mask_utils.area(recs[1]["segmentation"]) == 0
    json.dumps(recs)  # json-serialisable as is
    # a sequence works as the label map; no masks -> no segmentation
    recs = detections_to_results(1, np.zeros((1, 4)), [0.5], [1], [5, 6])
    assert recs[0]["category_id"] == 6 and "segmentation" not in recs[0]
    assert detections_to_results(1, np.zeros((0, 4)), [], [], [5], masks=np.zeros((0, 8, 8))) == []


def test_detections_to_results_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        detections_to_results(1, np.zeros((2, 4)), [0.5], [0], [1])
    with pytest.raises(ValueError, match="finite"):
        detections_to_results(1, np.zeros((1, 4)), [float("nan")], [0], [1])
    with pytest.raises(ValueError, match="no category id"):
        detections_to_results(1, np.zeros((1, 4)), [0.5], [3], [1, 2])
    with pytest.raises(ValueError, match="masks"):
        detections_to_results(1, np.zeros((1, 4)), [0.5], [0], [1], masks=np.zeros((2, 8, 8)))


def test_results_json_round_trip(gt_path, tmp_path):
    dets = perfect()
    path = write_results_json(tmp_path / "out" / "results_segm.json", dets)
    assert read_results_json(path) == dets
    assert [p.name for p in path.parent.iterdir()] == ["results_segm.json"]  # no temporary left
    assert evaluate(gt_path, path, "segm") == evaluate(gt_path, dets, "segm")
    write_results_json(path, dets[:1])  # replaces
    assert len(read_results_json(path)) == 1
    (tmp_path / "dict.json").write_text("{}")
    with pytest.raises(ValueError, match="json list"):
        read_results_json(tmp_path / "dict.json")


def test_evaluation_leaves_the_callers_records_alone(gt_path):
    dets = perfect()
    before = json.dumps(dets)
    for backend in BACKENDS:
        evaluate(gt_path, dets, "segm", backend=backend)
        evaluate(gt_path, dets, "bbox", backend=backend)
    assert json.dumps(dets) == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad, message", [
    ({"image_id": 99}, "image_id 99"),
    ({"category_id": 42}, "category_id 42"),
    ({"score": float("nan")}, "score"),
    ({"score": float("inf")}, "score"),
    ({"bbox": [0, 0, float("nan"), 1]}, "bbox"),
    ({"bbox": [0, 0, 1]}, "bbox"),
    ({"bbox": [5, 5, -2, 3]}, "negative width"),
    ({"score": "0.5"}, "score"),
])
def test_bad_results_are_refused(gt_path, backend, bad, message):
    dets = perfect()
    dets[2].update(bad)
    with pytest.raises(ValueError, match=message):
        evaluate(gt_path, dets, "bbox", backend=backend)


def test_bad_arguments_are_refused(gt_path, tmp_path):
    dets = perfect()
    with pytest.raises(ValueError, match="iou_type"):
        evaluate(gt_path, dets, "keypoints")
    with pytest.raises(ValueError, match="backend"):
        evaluate(gt_path, dets, "bbox", backend="coco")
    with pytest.raises(ValueError, match="max_dets"):
        evaluate(gt_path, dets, "bbox", max_dets=0)
    del dets[1]["bbox"]
    with pytest.raises(ValueError, match="every segm record has a bbox or none"):
        evaluate(gt_path, dets, "segm")
    del dets[0]["segmentation"]
    with pytest.raises(ValueError, match="segmentation"):
        evaluate(gt_path, dets, "segm")
    gt = json.loads(gt_path.read_text())
    del gt["images"][1]["neg_category_ids"]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(ValueError, match="neg_category_ids"):
        evaluate(tmp_path / "gt.json", perfect(), "bbox")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_empty_results_score_zero(gt_path, iou_type, backend):
    m = evaluate(gt_path, [], iou_type, backend=backend)
    assert m == {**{k: 0.0 for k in m}, "APl": -1.0}


def test_numpy_patch_is_idempotent():
    patch_numpy_for_lvis()
    patch_numpy_for_lvis()
    assert np.float is float  # noqa: NPY001
    assert math.isclose(np.float(0.5), 0.5)

"""The look-alike analysis (rog.evaluation.lookalike), the glyph shapes it rests on (rog.data.lookalikes)
and the detection sample (rog.evaluation.samples), against hand-built cases with known outcomes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rog.data import lookalikes as shapes
from rog.evaluation.lookalike import best_match, classify, dataset_lookalikes, lookalike_analysis
from rog.evaluation.samples import choose_images, detection_sample


def _category(cid, glyph, frequency):
    return {"id": cid, "name": f"glyph_{cid}", "glyph": glyph, "frequency": frequency}


def _image(i):
    return {"id": i, "file_name": f"val/{i}.png", "height": 100, "width": 100,
            "neg_category_ids": [], "not_exhaustive_category_ids": []}


def _ann(i, image, cat, box):
    return {"id": i, "image_id": image, "category_id": cat, "bbox": box, "area": box[2] * box[3]}


def _det(image, cat, box, score):
    return {"image_id": image, "category_id": cat, "bbox": box, "score": score}


# categories: 1 'V' rare, 2 'v' frequent (1's look-alike), 3 'C' common, 4 'X' rare, 5 'a' frequent
CATEGORIES = [_category(1, "V", "r"), _category(2, "v", "f"), _category(3, "C", "c"), _category(4, "X", "r"),
              _category(5, "a", "f")]
GT = {"images": [_image(10), _image(20)], "categories": CATEGORIES, "annotations": [
    _ann(1, 10, 1, [0, 0, 10, 10]),    # A: its own class scores highest -> correct
    _ann(2, 10, 1, [20, 0, 10, 10]),   # B: the look-alike 'v' out-ranks 'V' on it -> lookalike (f), covered
    _ann(3, 10, 4, [40, 0, 10, 10]),   # C: 'C' covers it; a higher 'v' only overlaps (IoU 0.25) -> other (c)
    _ann(4, 10, 4, [60, 0, 10, 10]),   # D: nothing near -> missed
    _ann(5, 10, 5, [80, 0, 10, 10]),   # a frequent object: not analysed
    _ann(6, 20, 1, [0, 0, 10, 10]),    # E: its only covering detection falls beyond the top-K cut -> missed
    _ann(7, 20, 4, [40, 40, 10, 10]),  # F: two covering detections tie on score: the higher IoU ('X') wins
]}
RESULTS = [
    _det(10, 1, [0, 0, 10, 10], 0.9),
    _det(10, 2, [20, 0, 10, 9], 0.8), _det(10, 1, [20, 0, 10, 10], 0.6),
    _det(10, 3, [40, 0, 10, 10], 0.7), _det(10, 2, [46, 0, 10, 10], 0.95),
    _det(20, 5, [50, 50, 5, 5], 0.99), _det(20, 5, [70, 70, 5, 5], 0.98), _det(20, 5, [80, 10, 5, 5], 0.96),
    _det(20, 1, [0, 0, 10, 10], 0.1),
    _det(20, 3, [40, 40, 10, 8], 0.97), _det(20, 4, [40, 40, 10, 10], 0.97),
]


def test_best_match_takes_the_highest_score_among_covering_detections():
    boxes = np.array([[0, 0, 10, 10], [6, 0, 10, 10], [0, 0, 10, 8]], dtype=float)  # IoU 1, 0.25, 0.8
    index, covering = best_match([0, 0, 10, 10], boxes, np.array([0.2, 0.9, 0.5]))
    assert index == 2 and covering.tolist() == [True, False, True]
    assert best_match([0, 0, 10, 10], boxes, np.array([0.5, 0.9, 0.5]))[0] == 0  # tie: the higher IoU
    assert best_match([50, 50, 5, 5], boxes, np.ones(3))[0] is None
    assert best_match([0, 0, 10, 10], np.zeros((0, 4)), np.zeros(0))[0] is None
    assert [classify(1, p, [2]) for p in (1, 2, 3, None)] == ["correct", "lookalike", "other", "missed"]


def test_lookalike_analysis_of_a_hand_built_case():
    out = lookalike_analysis(GT, RESULTS, {1: [(2, 0.66)], 4: [5]}, max_dets=5, definition="by hand")
    assert out["counts"] == {"instances": 6, "correct": 2, "lookalike": {"r": 0, "c": 0, "f": 1},
                             "other": {"r": 0, "c": 1, "f": 0}, "missed": 2, "covered": 3}
    # covered: A, F and B, whose own class covers it but is out-ranked (E's detection is cut)
    assert out["confusion"] == {"1": {"1": 1, "2": 1, "missed": 1}, "4": {"3": 1, "4": 1, "missed": 1}}
    rare = {r["id"]: r for r in out["rare_categories"]}
    assert rare[1]["instances"] == 3 and rare[1]["lookalikes"] == [[2, 0.66]]
    assert rare[4]["lookalikes"] == [[5, None]]
    assert set(out["categories"]) == {"1", "2", "3", "4", "5"} and out["categories"]["2"]["frequency"] == "f"
    assert out["max_dets"] == 5 and "IoU >= 0.5" in out["rule"] and out["lookalike_definition"] == "by hand"
    # own-class ranks within each image's top 5: A's 'V' (0.9) is 2nd behind 'v' 0.95; B's 'V' (0.6) 5th; C and D
    # have no own-class detection; E's (0.1) is cut; F's 'X' ties 0.97 with 'C', behind 0.99 and 0.98: 3rd
    assert out["own_class_ranks"] == [[1, 2], [1, 5], [4, None], [4, None], [1, None], [4, 3]]
    json.dumps(out)  # serialisable as it is


def test_without_the_top_k_cut_and_without_lookalikes():
    out = lookalike_analysis(GT, RESULTS, None, max_dets=300)
    counts = out["counts"]
    assert counts["missed"] == 1 and counts["correct"] == 3  # E is found once the cut keeps its detection
    assert counts["lookalike"] == {"r": 0, "c": 0, "f": 0} and counts["other"] == {"r": 0, "c": 1, "f": 1}
    assert out["lookalike_definition"] == "none given"
    assert out["own_class_ranks"][4] == [1, 6]  # E's 'V' at 0.1, below the image's five other detections


def test_unknown_frequency_is_refused():
    bad = dict(GT, categories=[dict(c, frequency="x") if c["id"] == 3 else c for c in CATEGORIES])
    with pytest.raises(ValueError, match="frequency"):
        lookalike_analysis(bad, RESULTS, {})


def test_normalised_shape_keeps_the_aspect_and_centres():
    ink = np.zeros((40, 40), dtype=bool)
    ink[5:25, 10:20] = True  # 20 x 10 -> 32 x 16, centred
    shape = shapes.normalise_shape(ink, 32)
    ys, xs = np.nonzero(shape)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (0, 31, 8, 23)
    assert shapes.normalise_shape(np.zeros((5, 5), bool)) is None


def test_shape_similarity_is_the_mean_iou_over_fonts_drawing_both():
    a = np.zeros((4, 4), bool); a[:, :2] = True      # left half
    b = np.zeros((4, 4), bool); b[:, :3] = True      # left 3/4: IoU with a = 8 / 12
    s = np.stack([np.stack([a, a]), np.stack([b, a]), np.stack([b, np.zeros((4, 4), bool)])])  # [3, 2, 4, 4]
    drawn = np.array([[True, True], [True, True], [True, False]])
    sim = shapes.shape_similarity(s, drawn)
    assert sim[0, 1] == pytest.approx((8 / 12 + 1) / 2) and sim[1, 0] == sim[0, 1]
    assert sim[0, 2] == pytest.approx(8 / 12)  # font 2 does not draw character 2: left out of the mean
    assert np.allclose(np.diag(sim), 1.0)
    pairs = shapes.lookalike_pairs([7, 8, 9], sim, threshold=0.7)
    assert pairs == {7: [(8, 0.8333)], 8: [(9, 1.0), (7, 0.8333)], 9: [(8, 1.0)]}  # most similar first


def test_lt_glyphs_lookalikes_from_the_snapshot_fonts(params):
    from data_helpers import ensure_snapshot

    dataset = dict(params["dataset"], glyphs=dict(params["dataset"]["glyphs"], snapshot=str(ensure_snapshot())))
    cats = [_category(i, ch, "f") for i, ch in enumerate("VvXxmnlI&", start=1)]
    pairs, definition = dataset_lookalikes(dataset, cats)
    ids = {ch: i for i, ch in enumerate("VvXxmnlI&", start=1)}
    found = {ch: {o for o, _ in pairs[i]} for ch, i in ids.items()}
    assert ids["v"] in found["V"] and ids["V"] in found["v"] and ids["x"] in found["X"]
    assert ids["I"] in found["l"]
    assert ids["n"] not in found["m"] and not found["&"]  # m/n differ in shape; '&' looks like nothing here
    assert "IoU >= 0.5" in definition
    none, why = dataset_lookalikes(dict(dataset, name="lvis"), cats)
    assert none == {} and "LT-Glyphs only" in why


def test_choose_images_prefers_new_rare_categories_then_fewer_objects():
    gt = {"categories": CATEGORIES, "images": [_image(i) for i in (1, 2, 3, 4, 5, 6)], "annotations": [
        _ann(1, 1, 1, [0, 0, 5, 5]), _ann(2, 1, 2, [9, 0, 5, 5]), _ann(3, 1, 2, [18, 0, 5, 5]),  # rare 1, 3 objects
        _ann(4, 2, 1, [0, 0, 5, 5]),                                                            # rare 1, 1 object
        _ann(5, 3, 1, [0, 0, 5, 5]), _ann(6, 3, 4, [9, 0, 5, 5]),                               # rare 1 and 4
        _ann(7, 4, 3, [0, 0, 5, 5]), _ann(8, 4, 3, [9, 0, 5, 5]),                               # 2 common
        _ann(9, 5, 3, [0, 0, 5, 5]),                                                            # 1 common
    ]}
    # image 3 shows two rare categories; then none is new: image 2 (1 object) before image 1 (3); then by commons
    assert choose_images(gt, 4) == [3, 2, 1, 4]
    assert choose_images(gt, 6) == [3, 2, 1, 4, 5, 6]


def test_detection_sample_keeps_the_top_detections_of_the_chosen_images():
    sample = detection_sample(GT, RESULTS, per_image=2)
    # both images hold rare 'V' and 'X': the one with fewer objects first
    assert [img["id"] for img in sample["images"]] == [20, 10]
    first, second = sample["images"]
    assert [(d["category_id"], d["score"]) for d in first["detections"]] == [(5, 0.99), (5, 0.98)]
    assert second["file_name"] == "val/10.png" and len(second["ground_truth"]) == 5
    assert [d["score"] for d in second["detections"]] == [0.95, 0.9]
    assert set(sample["categories"]) == {"1", "2", "4", "5"}
    assert detection_sample(GT, RESULTS, image_ids=[20])["images"][0]["id"] == 20
    lvis = dict(GT, images=[{k: v for k, v in _image(10).items() if k != "file_name"}
                            | {"coco_url": "http://images.cocodataset.org/val2017/000000000010.jpg"}])
    assert detection_sample(lvis, RESULTS, image_ids=[10])["images"][0]["file_name"] == "val2017/000000000010.jpg"
    with pytest.raises(ValueError, match="not in the ground truth"):
        detection_sample(GT, RESULTS, image_ids=[99])

"""The OpenImages challenge metric (rog.evaluation.oid_challenge) and EQLv2's groups on hand-worked cases.

Each case states its expected AP, worked out by hand in the comments; most are built so that a
COCO-style matcher, or a rule left out, would give another number (said beside each).
"""
from __future__ import annotations

import numpy as np
import pytest

from rog.data.oid_groups import eqlv2_groups, lvis_frequency
from rog.evaluation.groups import group_aps
from rog.evaluation.oid_challenge import average_precision, challenge_metrics, match_image_class


def xywh(x0, y0, x1, y1):
    return [x0, y0, x1 - x0, y1 - y0]


def ground_truth(categories, images, boxes):
    """categories: [(id, ancestor ids, group)]; images: [(id, pos ids, neg ids)];
    boxes: [(image id, category id, (x0, y0, x1, y1), group_of)]."""
    return {
        "categories": [{"id": c, "name": f"c{c}", "ancestor_ids": list(a), "group": g} for c, a, g in categories],
        "images": [{"id": i, "pos_category_ids": list(p), "neg_category_ids": list(n)} for i, p, n in images],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": xywh(*b), "is_group_of": g}
                        for k, (i, c, b, g) in enumerate(boxes)],
        "openimages": {"group_rule": "test"},
    }


def det(image, category, box, score):
    return {"image_id": image, "category_id": category, "bbox": xywh(*box), "score": score}


def one_class_ap(gt_boxes, dets):
    """AP of class 1 on image 1 (verified present there)."""
    gt = ground_truth([(1, (), 1)], [(1, (1,), ())], [(1, 1, b, g) for b, g in gt_boxes])
    return challenge_metrics(gt, [det(1, 1, b, s) for b, s in dets])["per_category"][0]["AP"]


def test_precision_made_non_increasing_and_summed_over_recall_steps():
    # TP .9, FP .8, TP .7 of 2 boxes: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; non-increasing from the
    # right: 1, 2/3, 2/3; AP = 1/2 x 1 + 1/2 x 2/3 = 5/6 (the raw 1/2 at the second step is never used)
    A, B = (0, 0, 10, 10), (20, 0, 30, 10)
    assert one_class_ap([(A, 0), (B, 0)], [(A, 0.9), ((50, 50, 60, 60), 0.8), (B, 0.7)]) == pytest.approx(5 / 6)
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2) == pytest.approx(5 / 6)


def test_no_detection_is_ap_0_and_no_ground_truth_is_left_out():
    assert average_precision(np.zeros(0), np.zeros(0, dtype=bool), 3) == 0.0
    assert average_precision(np.array([0.5]), np.array([False]), 0) == -1.0


def test_a_detection_whose_best_box_is_taken_is_a_false_positive_not_passed_to_the_next_box():
    # A = [0, 10] and B = [3, 13] in x (height 10). d2 = [1, 11]: IoU 9/11 with A (taken by d1), 8/12 with B.
    # The challenge: d2 takes its best box or nothing -> TP, FP, TP: AP 5/6. COCO's matcher would give d2
    # B (free, IoU >= 0.5) and d3 nothing (its IoU with A is 7/13 but A is taken): TP, TP, FP: AP 1.
    A, B = (0, 0, 10, 10), (3, 0, 13, 10)
    assert one_class_ap([(A, 0), (B, 0)], [(A, 0.9), ((1, 0, 11, 10), 0.8), (B, 0.7)]) == pytest.approx(5 / 6)


def test_group_of_boxes_absorb_detections_and_count_once_with_their_best_score():
    # A non-group box A, two group-of boxes G (hit twice) and G2 (missed): 3 ground-truth instances.
    # d1 .9 and d2 .8 lie inside G (IoA 1, IoU small): absorbed, G is one TP of score .9; d3 .7 on A: TP;
    # d4 .95 far away: FP. Ranked: FP .95, TP .9, TP .7 -> precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3;
    # non-increasing: 2/3, 2/3, 2/3 -> AP = 1/3 x 2/3 + 1/3 x 2/3 = 4/9. (Group-of boxes as plain boxes:
    # d1, d2 false positives, G and G2 missed: another number.)
    A, G, G2 = (0, 0, 10, 10), (20, 0, 60, 40), (100, 0, 140, 40)
    dets = [((25, 5, 35, 15), 0.9), ((40, 20, 50, 30), 0.8), (A, 0.7), ((200, 200, 210, 210), 0.95)]
    assert one_class_ap([(A, 0), (G, 1), (G2, 1)], dets) == pytest.approx(4 / 9)


def test_match_image_class_returns_the_counted_detections_and_one_entry_per_found_group():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 60, 40]], dtype=float)
    group_of = np.array([False, True])
    dets = np.array([[25, 5, 35, 15], [0, 0, 10, 10], [40, 20, 50, 30], [0, 0, 9, 10]], dtype=float)
    scores, tp = match_image_class(dets, np.array([0.6, 0.7, 0.8, 0.65]), boxes, group_of)
    # by score: .8 (in G: absorbed), .7 (A: TP), .65 (A again, taken; IoA with G 0: FP), .6 (in G: absorbed)
    assert scores.tolist() == [0.7, 0.65, 0.8] and tp.tolist() == [True, False, True]


def test_hierarchy_expansion_and_verified_labels_decide_what_is_scored():
    # Animal (1) -> Mammal (2) -> Cat (3); Car (4); Boat (5) never annotated. Image 1: a Cat box, Cat verified
    # present. Image 2: Mammal verified absent (so Cat too, by expansion down). Image 3: a Car box only.
    gt = ground_truth(
        categories=[(1, (), 1), (2, (1,), 1), (3, (1, 2), 2), (4, (), 2), (5, (), 3)],
        images=[(1, (3,), ()), (2, (), (2,)), (3, (4,), ())],
        boxes=[(1, 3, (0, 0, 10, 10), 0), (3, 4, (0, 0, 20, 20), 0)])
    A = (0, 0, 10, 10)
    results = [det(1, 3, A, 0.9), det(1, 2, A, 0.8), det(1, 1, A, 0.7),  # the Cat box counts for its ancestors
               det(2, 3, A, 0.95),                                       # Cat verified absent in image 2: FP
               det(3, 3, A, 0.99),                                       # Cat not verified in image 3: dropped
               det(3, 4, (0, 0, 20, 20), 0.5)]
    out = challenge_metrics(gt, results)
    ap = {p["id"]: p["AP"] for p in out["per_category"]}
    num_gt = {p["id"]: p["num_gt"] for p in out["per_category"]}
    # Cat: FP .95 then TP .9 of 1 box: AP 1/2 (1/3 if image 3's .99 were scored; 1 if image 2's were dropped)
    assert ap[3] == pytest.approx(0.5)
    # Mammal and Animal: the expanded Cat box, found: AP 1 (without expansion they would have no ground truth)
    assert ap[2] == ap[1] == 1.0 and num_gt[2] == num_gt[1] == 1
    assert ap[4] == 1.0 and ap[5] == -1.0 and out["num_detections_dropped"] == 1
    assert out["AP50"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)        # Boat (no ground truth) left out
    assert out["AP1"] == 1.0 and out["AP2"] == pytest.approx(0.75) and out["AP3"] == -1.0


def test_expanding_detections_makes_a_leaf_detection_count_for_its_ancestors():
    gt = ground_truth([(1, (), 1), (2, (1,), 1)], [(1, (2,), ())], [(1, 2, (0, 0, 10, 10), 0)])
    plain = challenge_metrics(gt, [det(1, 2, (0, 0, 10, 10), 0.9)])
    expanded = challenge_metrics(gt, [det(1, 2, (0, 0, 10, 10), 0.9)], expand_detections=True)
    assert [p["AP"] for p in plain["per_category"]] == [0.0, 1.0]    # Animal's expanded box never detected
    assert [p["AP"] for p in expanded["per_category"]] == [1.0, 1.0]


def test_eqlv2_groups_sort_by_instance_count_and_cut_equal_parts():
    # ascending: 0 (k4), 1 (k1), 2 (k6), 3 (k2), 3 (k3: tie, class order), 4 (k8), 5 (k0), 6 (k9), 7 (k7), 9 (k5)
    assert eqlv2_groups([5, 1, 3, 3, 0, 9, 2, 7, 4, 6]) == [4, 1, 2, 3, 1, 5, 2, 5, 3, 4]
    groups = eqlv2_groups(list(range(500, 0, -1)))  # 500 classes: five groups of 100, EQLv2's split
    assert [groups.count(g) for g in range(1, 6)] == [100] * 5 and groups[0] == 5 and groups[-1] == 1
    assert [eqlv2_groups([1] * 7).count(g) for g in range(1, 6)] == [2, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="4 classes cannot make 5"):
        eqlv2_groups([1, 2, 3, 4])


def test_lvis_frequency_and_group_means():
    assert [lvis_frequency(n) for n in (0, 10, 11, 100, 101)] == ["r", "r", "c", "c", "f"]
    per_category = [{"id": 1, "AP": 0.2}, {"id": 2, "AP": 0.6}, {"id": 3, "AP": -1.0}, {"id": 4, "AP": 0.5}]
    assert group_aps(per_category, {1: 1, 2: 1, 3: 2, 4: 3}) == {"AP1": pytest.approx(0.4), "AP2": -1.0, "AP3": 0.5}

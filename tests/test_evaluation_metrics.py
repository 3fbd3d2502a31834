"""The paper's extra metrics: max-detections sweep, five frequency groups, AP per category, metrics.json."""
import json

import numpy as np
import pytest

from rog.evaluation.lvis_compat import LVIS, LVISEval, LVISResults
from rog.evaluation.lvis_eval import evaluate, evaluate_detailed, ground_truth
from rog.evaluation.metrics import (
    evaluate_all,
    frequency_groups,
    image_counts_from_json,
    per_category_ap,
    write_metrics_json,
)
from rog.evaluation.synthetic import synthetic_detections, synthetic_lvis


@pytest.fixture(scope="module")
def dataset():
    return synthetic_lvis(num_images=25, num_categories=13, seed=7)


@pytest.fixture(scope="module")
def gt_path(dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("gt") / "val.json"
    path.write_text(json.dumps(dataset))
    return path


@pytest.fixture(scope="module")
def dets(dataset):
    # many results per image, so that K in the sweep bites
    return synthetic_detections(dataset, per_gt=12, false_positives=20, seed=8)


@pytest.fixture(scope="module")
def all_metrics(gt_path, dets):
    return evaluate_all(gt_path, dets, dets, max_dets_list=[1000, 3, 10, 30, 300], backend="lvis")


def test_frequency_groups_hand_example():
    counts = {10: 5, 11: 1, 12: 50, 13: 5, 14: 900, 15: 2, 16: 7, 17: 30, 18: 120, 19: 3}
    groups = frequency_groups(sorted(counts), counts)
    # ranked: 11(1) 15(2) 19(3) 10(5) 13(5) 16(7) 17(30) 12(50) 18(120) 14(900); ties by id
    assert groups == [[11, 15], [19, 10], [13, 16], [17, 12], [18, 14]]
    sizes = [len(g) for g in frequency_groups(list(range(13)), {c: c % 4 for c in range(13)})]
    assert sizes == [3, 3, 3, 2, 2]
    with pytest.raises(ValueError, match="no training image count"):
        frequency_groups([1, 2, 3, 4, 5, 6], {1: 1})
    with pytest.raises(ValueError, match="cannot make 5 groups"):
        frequency_groups([1, 2], {1: 1, 2: 2})


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
def test_per_category_ap_is_lvis_api_ap_of_that_category(gt_path, dets):
    """Compared with lvis-api's own evaluation restricted to one category, and averaged back to AP."""
    ev = evaluate_detailed(gt_path, dets, "bbox", backend="lvis")
    ap = per_category_ap(ev.precision)
    assert (ap == -1).sum() < len(ap) and ap.max() <= 1
    lvis_gt = LVIS(str(gt_path))
    for cat in ev.category_ids[:4]:
        one = LVISEval(lvis_gt, LVISResults(lvis_gt, [dict(d) for d in dets], max_dets=300), "bbox")
        one.params.cat_ids = [cat]
        one.run()
        assert ap[ev.category_ids.index(cat)] == pytest.approx(one.results["AP"], abs=1e-12)
    assert ap[ap > -1].mean() == pytest.approx(ev.metrics["AP"], abs=1e-12)
    gt = ground_truth(gt_path)
    for f in "rcf":
        members = [i for i, c in enumerate(ev.category_ids) if gt.frequency[c] == f and ap[i] > -1]
        assert ap[members].mean() == pytest.approx(ev.metrics[f"AP{f}"], abs=1e-12)


def test_per_category_ap_marks_categories_without_gt():
    precision = np.full((10, 101, 3, 4), -1.0)
    precision[:, :, 0, :] = 0.5
    precision[:, :50, 2, 0], precision[:, 50:, 2, 0] = 1.0, 0.0
    assert per_category_ap(precision).tolist() == [0.5, -1.0, 50 / 101]


def test_evaluate_all_groups_and_per_category(all_metrics, dataset):
    counts = {c["id"]: c["image_count"] for c in dataset["categories"]}
    for iou_type in ("bbox", "segm"):
        m = all_metrics[iou_type]
        ap = {c["id"]: c["AP"] for c in m["per_category"]}
        assert set(ap) == set(counts)
        assert [c["train_image_count"] for c in m["per_category"]] == [counts[c] for c in sorted(counts)]
        groups = m["frequency_groups"]
        assert [g["num_categories"] for g in groups] == [3, 3, 3, 2, 2]  # 13 categories
        members = [c for g in groups for c in g["category_ids"]]
        assert sorted(members) == sorted(counts)
        ranked = [counts[c] for c in members]
        assert ranked == sorted(ranked)
        for g in groups:
            with_gt = [ap[c] for c in g["category_ids"] if ap[c] > -1]
            assert g["num_with_gt"] == len(with_gt)
            assert g["AP"] == pytest.approx(np.mean(with_gt) if with_gt else -1, abs=1e-12)
            assert g["train_image_count_range"] == [min(counts[c] for c in g["category_ids"]),
                                                    max(counts[c] for c in g["category_ids"])]
    assert all_metrics["protocol"]["train_image_counts"] == "ground truth json categories"


def test_max_dets_sweep(all_metrics, gt_path, dets):
    per_image = max(np.bincount([d["image_id"] for d in dets]))
    assert 30 < per_image < 300
    for iou_type in ("bbox", "segm"):
        m = all_metrics[iou_type]
        sweep = m["max_dets_sweep"]
        assert list(sweep) == ["3", "10", "30", "300", "1000"]
        assert m["max_results_per_image"] == per_image
        assert [s["saturated"] for s in sweep.values()] == [False, False, False, True, True]
        ar = [s["metrics"]["AR"] for s in sweep.values()]
        assert all(a < b for a, b in zip(ar[:3], ar[1:4]))  # more results per image, more recall
        assert sweep["300"]["metrics"] == sweep["1000"]["metrics"] == m["metrics"]  # saturated
        assert sweep["3"]["metrics"]["AP"] < sweep["300"]["metrics"]["AP"]
        assert sweep["10"]["metrics"] == pytest.approx(evaluate(gt_path, dets, iou_type, 10, backend="fast"),
                                                       abs=1e-9)
        # saturated K reuse one evaluation: it must equal evaluating at that K from scratch
        assert sweep["1000"]["metrics"] == pytest.approx(evaluate(gt_path, dets, iou_type, 1000, backend="fast"),
                                                         abs=1e-9)


def test_mask_budget_leaves_the_segm_sweep_above_it_out(all_metrics, gt_path, dets):
    """mask_max_dets 10 (masks for each image's top 10): bbox keeps every K, segm only K <= 10, and the
    K it keeps are the numbers of the evaluation without a budget."""
    m = evaluate_all(gt_path, dets, dets, max_dets_list=[3, 10, 30], max_dets=10, backend="lvis", mask_max_dets=10)
    assert list(m["bbox"]["max_dets_sweep"]) == ["3", "10", "30"] and list(m["segm"]["max_dets_sweep"]) == ["3", "10"]
    assert m["protocol"]["mask_max_dets"] == 10
    for iou_type in ("bbox", "segm"):
        for k, entry in m[iou_type]["max_dets_sweep"].items():
            assert entry["metrics"] == all_metrics[iou_type]["max_dets_sweep"][k]["metrics"]


def test_evaluate_all_checks_results(gt_path, dets):
    bad = [dict(d) for d in dets]
    bad[5]["score"] = float("nan")
    with pytest.raises(ValueError, match="result 5: score nan"):
        evaluate_all(gt_path, bad, None, max_dets_list=[10, 1000])


def test_max_dets_above_300_evaluates_more_than_300(gt_path, dataset):
    """lvis-api keeps K results per image in LVISResults: K=1000 is honest when results hold them.

    Every object found at score 0.5, but the first annotated image also gets 400 misses at 0.9:
    K=300 cuts its hits, K=1000 keeps them.
    """
    hits = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.5}
            for a in dataset["annotations"]]
    first = dataset["annotations"][0]
    misses = [{"image_id": first["image_id"], "category_id": first["category_id"],
               "bbox": [0.0, 0.0, 1.0 + i % 3, 1.0], "score": 0.9} for i in range(400)]
    m = evaluate_all(gt_path, hits + misses, None, max_dets_list=[300, 1000])["bbox"]
    assert m["max_results_per_image"] == 400 + sum(a["image_id"] == first["image_id"] for a in hits)
    k300, k1000 = m["max_dets_sweep"]["300"], m["max_dets_sweep"]["1000"]
    assert not k300["saturated"] and k1000["saturated"]
    assert k1000["metrics"]["AR"] == 1.0 > k300["metrics"]["AR"]


def test_metrics_json_and_train_counts(gt_path, dets, dataset, tmp_path):
    train = {"images": [], "annotations": [],
             "categories": [{"id": c["id"], "image_count": 1000 - c["id"]} for c in dataset["categories"]]}
    (tmp_path / "train.json").write_text(json.dumps(train))
    assert image_counts_from_json(tmp_path / "train.json")[1] == 999
    m = evaluate_all(gt_path, dets, None, [300], train_image_counts=tmp_path / "train.json")
    assert "segm" not in m and m["protocol"]["train_image_counts"] == "train json"
    assert m["bbox"]["frequency_groups"][0]["category_ids"] == [13, 12, 11]  # counts fall with id
    path = write_metrics_json(tmp_path / "run" / "metrics.json", m)
    assert json.loads(path.read_text()) == m
    with pytest.raises(ValueError, match="no training image count"):
        evaluate_all(gt_path, dets, None, [300], train_image_counts={1: 5})
    del train["categories"][0]["image_count"]
    (tmp_path / "train.json").write_text(json.dumps(train))
    with pytest.raises(ValueError, match="image_count"):
        image_counts_from_json(tmp_path / "train.json")


def test_fewer_categories_than_groups_keeps_every_other_metric(tmp_path):
    small = synthetic_lvis(num_images=8, num_categories=3, seed=3)
    path = tmp_path / "val3.json"
    path.write_text(json.dumps(small))
    dets = synthetic_detections(small, per_gt=3, false_positives=4, seed=4)
    with pytest.warns(UserWarning, match="3 categories cannot make 5 frequency groups"):
        m = evaluate_all(path, dets, None, [300], train_image_counts={c["id"]: 10 for c in small["categories"]})
    assert "frequency_groups" not in m["bbox"] and "cannot make 5 groups" in m["protocol"]["train_image_counts"]
    assert m["bbox"]["metrics"] == evaluate_detailed(path, dets, "bbox", 300).metrics  # same as a plain run
    assert len(m["bbox"]["per_category"]) == 3

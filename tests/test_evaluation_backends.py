"""The fast path (faster-coco-eval, LVIS mode) gives lvis-api's numbers: the proof that makes it the default."""
import json

import numpy as np
import pytest

from rog.evaluation import lvis_eval
from rog.evaluation.lvis_eval import evaluate_detailed, ground_truth
from rog.evaluation.synthetic import synthetic_detections, synthetic_lvis

TOL = 1e-9


@pytest.fixture(scope="module")
def dataset():
    return synthetic_lvis(num_images=30, num_categories=14, seed=3)


@pytest.fixture(scope="module")
def gt(dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("gt") / "gt.json"
    path.write_text(json.dumps(dataset))
    return ground_truth(path)


@pytest.fixture(scope="module")
def detections(dataset):
    return {
        "realistic": synthetic_detections(dataset, per_gt=3, false_positives=6, seed=4),
        "random": synthetic_detections(dataset, per_gt=10, false_positives=20, random_only=True, seed=5),
    }


def test_the_synthetic_set_exercises_the_protocol(dataset, detections):
    freqs = {c["frequency"] for c in dataset["categories"]}
    assert freqs == {"r", "c", "f"}
    assert any(img["not_exhaustive_category_ids"] for img in dataset["images"])
    annotated = {a["image_id"] for a in dataset["annotations"]}
    assert any(img["id"] not in annotated for img in dataset["images"])
    areas = [a["area"] for a in dataset["annotations"]]
    assert min(areas) < 32 ** 2 < max(areas) and max(areas) > 96 ** 2
    per_image = np.bincount([d["image_id"] for d in detections["random"]])
    assert per_image.max() > 25  # the K=25 runs below do cut


@pytest.mark.parametrize("kind", ["realistic", "random"])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("max_dets", [300, 25])
def test_fast_path_equals_lvis_api(gt, detections, kind, iou_type, max_dets):
    ref = evaluate_detailed(gt, detections[kind], iou_type, max_dets, backend="lvis")
    fast = evaluate_detailed(gt, detections[kind], iou_type, max_dets, backend="fast")
    assert ref.metrics["AP"] > 0  # not a trivial all-zero comparison
    for name in lvis_eval.METRICS:
        assert abs(ref.metrics[name] - fast.metrics[name]) <= TOL, name
    assert ref.precision.shape == fast.precision.shape == (10, 101, len(gt.category_ids), 4)
    np.testing.assert_allclose(fast.precision, ref.precision, rtol=0, atol=TOL)


def test_fast_path_equals_lvis_api_on_masks_without_boxes(gt, detections):
    """segm records without "bbox": both libraries then take areas from the masks (APs/m/l change)."""
    masks_only = [{k: v for k, v in d.items() if k != "bbox"} for d in detections["realistic"]]
    ref = evaluate_detailed(gt, masks_only, "segm", backend="lvis")
    fast = evaluate_detailed(gt, masks_only, "segm", backend="fast")
    assert ref.metrics["AP"] > 0
    for name in lvis_eval.METRICS:
        assert abs(ref.metrics[name] - fast.metrics[name]) <= TOL, name


def test_default_backend_is_the_proven_one():
    assert lvis_eval.DEFAULT_BACKEND == "fast"

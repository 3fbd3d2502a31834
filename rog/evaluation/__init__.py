"""LVIS evaluation: results records, lvis-api / faster-coco-eval metrics, the paper's extra metrics.

    from rog.evaluation import evaluate, detections_to_results, write_results_json, evaluate_all
"""
from rog.evaluation.lvis_eval import METRICS, GroundTruth, evaluate, evaluate_detailed, ground_truth
from rog.evaluation.metrics import evaluate_all, image_counts_from_json, write_metrics_json
from rog.evaluation.results import (
    detections_to_results,
    encode_masks,
    read_results_json,
    top_k_per_image,
    write_results_json,
)

__all__ = [
    "METRICS", "GroundTruth", "evaluate", "evaluate_detailed", "ground_truth",
    "evaluate_all", "image_counts_from_json", "write_metrics_json",
    "detections_to_results", "encode_masks", "read_results_json", "top_k_per_image", "write_results_json",
]

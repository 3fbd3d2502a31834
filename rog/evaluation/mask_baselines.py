"""Two reference points for segm AP that need no trained mask head.

- `round_trip_results`: every ground-truth mask cropped to its own box as the mask head's training
  target (`rog.models.masks.crop_masks`), pasted back (`paste_masks`) and scored 1. It measures what
  the target/paste convention alone loses; a head that predicted its targets perfectly scores this.
- `mean_shape_results`: each detection's mask is its class's mean training target, pasted into the
  detected box. A mask head that learns anything about the detected instance must beat it.

Both return LVIS segm records (rog.evaluation.results) for `evaluate_all`.
"""
from __future__ import annotations

from typing import Iterable

import torch
from tqdm import tqdm

from rog.data.lvis_dataset import LVISDataset
from rog.evaluation.results import detections_to_results
from rog.models.masks import crop_masks, paste_masks

MASK_SIZE = 28  # the mask head's output: 14 x 14 RoI features upsampled twice


def round_trip_results(dataset: LVISDataset, size: int = MASK_SIZE, progress: bool = False) -> list[dict]:
    """Segm records of the ground truth itself, through crop (size x size) and paste."""
    records = []
    for index in tqdm(range(len(dataset)), desc="round trip", disable=not progress):
        target = dataset.target(index)
        if len(target["boxes"]) == 0:
            continue
        record = dataset.images[index]
        targets = crop_masks(target["masks"], target["boxes"], size)
        pasted = paste_masks(targets[:, None], target["boxes"], (record["height"], record["width"]))
        scores = torch.ones(len(target["boxes"]))
        records += detections_to_results(int(record["id"]), target["boxes"], scores, target["labels"],
                                         dataset.category_ids, masks=pasted)
    return records


def mean_shapes(dataset: LVISDataset, size: int = MASK_SIZE, progress: bool = False) -> torch.Tensor:
    """[C, size, size]: each class's mean training target over the dataset's instances (0 if none)."""
    sums = torch.zeros(dataset.num_classes, size, size)
    counts = torch.zeros(dataset.num_classes)
    for index in tqdm(range(len(dataset)), desc="mean shapes", disable=not progress):
        target = dataset.target(index)
        if len(target["boxes"]):
            sums.index_add_(0, target["labels"], crop_masks(target["masks"], target["boxes"], size))
            counts.index_add_(0, target["labels"], torch.ones(len(target["labels"])))
    return sums / counts.clamp(min=1)[:, None, None]


def mean_shape_results(shapes: torch.Tensor, detections: Iterable[dict], dataset: LVISDataset) -> list[dict]:
    """Segm records for bbox records `detections` (LVIS results of `dataset`'s images): each box gets
    its category's mean shape (shapes [C, M, M], from `mean_shapes` of the training split)."""
    by_image: dict[int, list[dict]] = {}
    for d in detections:
        by_image.setdefault(int(d["image_id"]), []).append(d)
    records = []
    for record in dataset.images:
        dets = by_image.get(int(record["id"]), [])
        if not dets:
            continue
        boxes = torch.tensor([d["bbox"] for d in dets], dtype=torch.float32)
        boxes[:, 2:] += boxes[:, :2]
        labels = dataset.category_ids_to_labels([d["category_id"] for d in dets])
        scores = torch.tensor([float(d["score"]) for d in dets])
        pasted = paste_masks(shapes[labels][:, None], boxes, (record["height"], record["width"]))
        records += detections_to_results(int(record["id"]), boxes, scores, labels, dataset.category_ids,
                                         masks=pasted)
    return records

"""A small, fixed sample of detections to draw: the top detections of a few evaluation images.

The report draws detections from this file (results/experiments/NAME/detections.json), never from a
checkpoint. The images are chosen from the ground truth alone, so every run of a dataset shows the
same images, and preferably images that hold rare glyphs:

1. images with rare objects (LVIS frequency 'r'), greedily: the image whose rare categories are most
   not yet shown, then the fewest objects (a readable drawing), then the smallest id;
2. if too few hold rare objects, the rest by most common ('c') objects, fewest objects, smallest id.

    sample = detection_sample(gt_json, results_bbox)   # {"images": [...], "categories": {...}}
"""
from __future__ import annotations

import os
from collections.abc import Sequence

from rog.data.lvis_dataset import image_relpath
from rog.evaluation.results import gt_and_results, write_json_atomic

NUM_IMAGES = 4
PER_IMAGE = 30   # detections kept per image, highest scores first


def choose_images(dataset: dict, num_images: int = NUM_IMAGES) -> list[int]:
    """Ids of `num_images` images of an LVIS ground truth dict, in the order above (module docstring)."""
    frequency = {int(c["id"]): c.get("frequency") for c in dataset["categories"]}
    objects: dict[int, list[int]] = {int(img["id"]): [] for img in dataset["images"]}
    for ann in dataset["annotations"]:
        objects.setdefault(int(ann["image_id"]), []).append(int(ann["category_id"]))
    rare = {i: {c for c in cats if frequency.get(c) == "r"} for i, cats in objects.items()}
    chosen: list[int] = []
    shown: set[int] = set()
    candidates = sorted(i for i in objects if rare[i])
    while candidates and len(chosen) < num_images:
        best = min(candidates, key=lambda i: (-len(rare[i] - shown), len(objects[i]), i))
        chosen.append(best)
        shown |= rare[best]
        candidates.remove(best)
    rest = sorted((i for i in objects if i not in chosen),
                  key=lambda i: (-sum(frequency.get(c) == "c" for c in objects[i]), len(objects[i]), i))
    return chosen + rest[:num_images - len(chosen)]


def detection_sample(gt_json: str | os.PathLike | dict, results: Sequence[dict] | str | os.PathLike,
                     image_ids: Sequence[int] | None = None, num_images: int = NUM_IMAGES,
                     per_image: int = PER_IMAGE) -> dict:
    """The sample of `image_ids` (default: choose_images) as a JSON-serialisable dict:

    {"images": [{"id", "file_name" (below the image root, as LVISDataset reads it), "height", "width",
                 "ground_truth": [{"category_id", "bbox"}],
                 "detections": [{"category_id", "bbox", "score"}]}],   # bbox xywh, top per_image by score
     "categories": {id: {"name", "glyph", "frequency"}},   # the ones named in the sample
     "rule": how the images were chosen}
    Boxes rounded to 0.1 px, scores to 1e-4 (the file is committed; it stays a few kB)."""
    dataset, results = gt_and_results(gt_json, results)
    ids = list(image_ids) if image_ids is not None else choose_images(dataset, num_images)
    images = {int(img["id"]): img for img in dataset["images"]}
    unknown = [i for i in ids if i not in images]
    if unknown:
        raise ValueError(f"images {unknown[:5]} are not in the ground truth")
    wanted = set(ids)
    gts: dict[int, list[dict]] = {i: [] for i in ids}
    for ann in dataset["annotations"]:
        if int(ann["image_id"]) in wanted:
            gts[int(ann["image_id"])].append({"category_id": int(ann["category_id"]), "bbox": _box(ann["bbox"])})
    dets: dict[int, list[dict]] = {i: [] for i in ids}
    for r in results:
        if int(r["image_id"]) in wanted:
            dets[int(r["image_id"])].append(r)
    out_images, named = [], set()
    for i in ids:
        top = sorted(dets[i], key=lambda r: -float(r["score"]))[:per_image]  # stable: ties keep file order
        kept = [{"category_id": int(r["category_id"]), "bbox": _box(r["bbox"]), "score": round(float(r["score"]), 4)}
                for r in top]
        named |= {g["category_id"] for g in gts[i]} | {d["category_id"] for d in kept}
        img = images[i]
        out_images.append({"id": i, "file_name": image_relpath(img), "height": int(img["height"]),
                           "width": int(img["width"]), "ground_truth": gts[i], "detections": kept})
    categories = {int(c["id"]): c for c in dataset["categories"]}
    return {"rule": (f"{len(ids)} images chosen from the ground truth ({__name__}.choose_images: rare "
                     f"categories first); the top {per_image} detections of each by score"),
            "images": out_images,
            "categories": {str(c): {"name": categories[c].get("name"), "glyph": categories[c].get("glyph"),
                                    "frequency": categories[c].get("frequency")} for c in sorted(named)}}


def _box(box: Sequence[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def write_detection_sample(path: str | os.PathLike, sample: dict):
    """Write detection_sample's dict atomically; returns the path."""
    return write_json_atomic(path, sample)

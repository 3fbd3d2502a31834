"""Synthetic LVIS-format ground truth and detections, for the evaluation tests and benchmark.

Not a dataset: shapes are ellipses in boxes, there are no pixels. What matters is that the json
exercises every part of the LVIS protocol: r/c/f categories, negative and not-exhaustive category
lists, RLE masks with areas in all three size ranges, images without annotations.
"""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils

from rog.evaluation.results import encode_masks


def ellipse_mask(height: int, width: int, box_xyxy) -> np.ndarray:
    """[H, W] bool: the ellipse inscribed in box (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box_xyxy
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx, ry = max((x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0


def synthetic_lvis(num_images: int = 20, num_categories: int = 12, max_objects: int = 6,
                   image_size: tuple[int, int] = (160, 200), seed: int = 0) -> dict:
    """An LVIS-format ground truth dict.

    Category ids are 1..C with training image counts spread over r/c/f (stored as ``image_count``
    and ``frequency``, as in LVIS's category list); every 7th image has no annotation. Annotations
    have an ellipse mask (RLE), its tight box and its pixel area as LVIS does.
    """
    rng = np.random.default_rng(seed)
    h, w = image_size
    counts = np.unique(np.round(np.geomspace(1, 400, num_categories)).astype(int))
    counts = np.sort(np.concatenate([counts, rng.integers(1, 400, num_categories - len(counts))]))
    categories = []
    for i, n in enumerate(rng.permutation(counts)):
        freq = "r" if n <= 10 else ("c" if n <= 100 else "f")
        categories.append({"id": i + 1, "name": f"cat{i + 1}", "frequency": freq,
                           "image_count": int(n), "instance_count": int(2 * n)})
    cat_ids = np.arange(1, num_categories + 1)
    # frequent categories show up more often in val too
    p = np.array([c["image_count"] for c in categories], dtype=float) ** 0.5
    p /= p.sum()
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        present = set()
        if img_id % 7 != 0:
            for _ in range(rng.integers(1, max_objects + 1)):
                cat = int(rng.choice(cat_ids, p=p))
                side = float(rng.choice([12, 24, 48, 100]) * rng.uniform(0.7, 1.4))
                bw, bh = min(side * rng.uniform(0.6, 1.5), w - 2), min(side * rng.uniform(0.6, 1.5), h - 2)
                x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                mask = ellipse_mask(h, w, (x1, y1, x1 + bw, y1 + bh))
                if mask.sum() == 0:
                    continue
                rle = encode_masks(mask[None])[0]
                annotations.append({
                    "id": len(annotations) + 1, "image_id": img_id, "category_id": cat,
                    "segmentation": rle, "area": float(mask.sum()),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                })
                present.add(cat)
        absent = [int(c) for c in cat_ids if c not in present]
        neg = sorted(int(c) for c in rng.choice(absent, size=min(len(absent), 3), replace=False))
        not_exhaustive = sorted(c for c in present if rng.random() < 0.2)
        images.append({"id": img_id, "height": h, "width": w, "file_name": f"{img_id:06d}.png",
                       "neg_category_ids": neg, "not_exhaustive_category_ids": not_exhaustive})
    return {"info": {"description": "synthetic LVIS-format ground truth"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": categories}


def synthetic_detections(dataset: dict, per_gt: int = 3, false_positives: int = 5, seed: int = 0,
                         masks: bool = True, random_only: bool = False) -> list[dict]:
    """LVIS results records for a synthetic_lvis dataset.

    Realistic (default): for each annotation, per_gt jittered copies (mostly the right category,
    some confused with another) with scores that fall with the jitter, plus false_positives random
    boxes per image, in categories positive, negative or unknown for the image (the federated rule
    drops the last kind). random_only: only random boxes and scores. Ties in scores are included
    on purpose (scores rounded to 2 decimals for a third of the records).
    """
    rng = np.random.default_rng(seed)
    cat_ids = [c["id"] for c in dataset["categories"]]
    size = {img["id"]: (img["height"], img["width"]) for img in dataset["images"]}
    boxes = []  # (image_id, category_id, xyxy, score)
    for ann in dataset["annotations"]:
        x, y, bw, bh = ann["bbox"]
        for _ in range(per_gt):
            if random_only:  # anywhere around the object, any size, category and score
                cx, cy = x + bw / 2 + rng.normal(0, 0.4) * bw, y + bh / 2 + rng.normal(0, 0.4) * bh
                sw, sh = bw * rng.uniform(0.5, 2), bh * rng.uniform(0.5, 2)
                box = np.array([cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2])
                boxes.append((ann["image_id"], int(rng.choice(cat_ids)), box, float(rng.random())))
                continue
            jitter = rng.normal(0, 0.15, 4) * [bw, bh, bw, bh]
            box = np.array([x, y, x + bw, y + bh]) + jitter
            cat = ann["category_id"] if rng.random() < 0.8 else int(rng.choice(cat_ids))
            score = float(np.clip(1.0 - np.abs(jitter).sum() / (bw + bh) + rng.normal(0, 0.1), 0.001, 1))
            boxes.append((ann["image_id"], cat, box, score))
    for img in dataset["images"]:
        h, w = size[img["id"]]
        for _ in range(false_positives):
            bw, bh = rng.uniform(4, w / 2), rng.uniform(4, h / 2)
            x1, y1 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            boxes.append((img["id"], int(rng.choice(cat_ids)), np.array([x1, y1, x1 + bw, y1 + bh]),
                          float(rng.uniform(0.001, 0.6))))
    order = rng.permutation(len(boxes))  # results arrive in no particular order
    records = []
    for i in order:
        image_id, cat, box, score = boxes[i]
        h, w = size[image_id]
        x1, y1, x2, y2 = np.clip(box, 0, [w, h, w, h])
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        if rng.random() < 1 / 3:
            score = round(score, 2) or 0.01
        rec = {"image_id": image_id, "category_id": cat,
               "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": score}
        if masks:
            rec["segmentation"] = encode_masks(ellipse_mask(h, w, (x1, y1, x2, y2))[None])[0]
        records.append(rec)
    return records

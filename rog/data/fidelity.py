"""The dimensions that decide whether a proxy's baselines behave as on LVIS v1: data and training exposure.

`data_statistics(train)` reads an LVIS-format training dict (LT-Glyphs' train.json or LVIS v1's own) and
`exposure(train, iterations, batch_size, threshold)` the schedule's: how often a rare image is seen with
random sampling and with repeat-factor sampling (RFS), and RFS's factors per frequency group. LVIS v1's
column is not computed here: it is published (rog/report/lvis_v1_statistics.yaml, with its sources).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from rog.data.sampler import category_repeat_factors, repeat_factors

GROUPS = ("r", "c", "f")


def _per_category(train: dict) -> tuple[dict[int, str], Counter, dict[int, set]]:
    """(frequency group of each category id, instances per category, images per category)."""
    group = {int(c["id"]): c["frequency"] for c in train["categories"]}
    instances = Counter(int(a["category_id"]) for a in train["annotations"])
    images: dict[int, set] = {cid: set() for cid in group}
    for a in train["annotations"]:
        images[int(a["category_id"])].add(int(a["image_id"]))
    return group, instances, images


def data_statistics(train: dict) -> dict:
    """The data rows of the fidelity table for an LVIS-format training dict (module docstring)."""
    group, instances, images = _per_category(train)
    annotated = {int(a["image_id"]) for a in train["annotations"]}
    per_image = Counter(int(a["image_id"]) for a in train["annotations"])
    cats_per_image = Counter()
    for cid, ids in images.items():
        for i in ids:
            cats_per_image[i] += 1
    counts = {g: sorted(instances[c] for c in group if group[c] == g) for g in GROUPS}
    total = sum(instances.values())
    median = {g: float(np.median(v)) if v else float("nan") for g, v in counts.items()}
    top = max(group, key=lambda c: len(images[c]))
    return {
        "categories": {g: len(counts[g]) for g in GROUPS},
        "train_images": len(annotated),
        "instances": total,
        "instances_per_image": total / max(len(annotated), 1),
        "categories_per_image": sum(cats_per_image.values()) / max(len(annotated), 1),
        "max_instances": max(instances.values(), default=0),
        "min_instances": min((instances[c] for c in group), default=0),
        "max_instances_per_image": max(per_image.values(), default=0),
        "total_over_median_rare": total / median["r"] if counts["r"] else float("nan"),
        "median_frequent_over_median_rare": median["f"] / median["r"] if counts["r"] and counts["f"] else float("nan"),
        "top_category": next(c.get("name", str(c["id"])) for c in train["categories"] if int(c["id"]) == top),
        "top_category_image_share": len(images[top]) / max(len(annotated), 1),
        "rare_instance_share": sum(counts["r"]) / max(total, 1),
    }


def exposure(train: dict, iterations: int, batch_size: int, threshold: float) -> dict:
    """The training rows: epochs, times a rare image is seen (random / RFS), RFS factors of rare and common.

    RFS's image factor r(I) is the max over its categories' factors (rog.data.sampler); a rare image is one
    holding a rare category, and it is seen epochs x r(I) times (the expectation under stochastic rounding).
    """
    group, _, images = _per_category(train)
    labels_of: dict[int, list[int]] = {}
    for a in train["annotations"]:
        labels_of.setdefault(int(a["image_id"]), []).append(int(a["category_id"]))
    image_ids = sorted(labels_of)
    labels = [labels_of[i] for i in image_ids]
    factors = category_repeat_factors(labels, threshold)
    image_factor = dict(zip(image_ids, repeat_factors(labels, threshold)))  # the sampler's r(I)
    epochs = iterations * batch_size / max(len(image_ids), 1)
    rare_images = sorted({i for c, ids in images.items() if group[c] == "r" for i in ids})
    rfs_epoch = sum(image_factor.values()) / max(len(image_ids), 1)  # an RFS epoch is this much longer

    def factor_range(g: str) -> list[float]:
        values = [factors[c] for c in group if group[c] == g and c in factors]
        return [min(values), max(values)] if values else [float("nan"), float("nan")]

    rare_seen_rfs = [epochs / rfs_epoch * image_factor[i] for i in rare_images]
    return {
        "epochs": epochs,
        "rare_image_seen_random": epochs,
        "rare_image_seen_rfs": float(np.median(rare_seen_rfs)) if rare_seen_rfs else float("nan"),
        "rfs_factor_rare": factor_range("r"),
        "rfs_factor_common": factor_range("c"),
        "rfs_threshold": threshold,
    }

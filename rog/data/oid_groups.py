"""The five frequency groups of OpenImages (EQLv2's rule) and LVIS's r/c/f cut, from training counts.

EQLv2 (tztztztztz/eqlv2, mmdet/utils/openimage_categories.py, ``get_group_ids``; read by
tools/parse_openimage_metric.py to report its OpenImages AP1..AP5, which the paper's Table 6 follows)
sorts the 500 categories by their number of training *instances* (boxes), ascending
(``np.argsort(instance_count)``), and cuts the sorted list into five consecutive groups of 100:
group 1 (AP1) the rarest 100, group 5 the most frequent. Here the same: ascending instance count,
ties by class order (EQLv2's argsort leaves ties in an unspecified order), cut into `num_groups`
parts of equal size (sizes differ by one when C is not a multiple of five, as np.array_split).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NUM_GROUPS = 5
GROUP_RULE = ("EQLv2 (tztztztztz/eqlv2, mmdet/utils/openimage_categories.py get_group_ids): categories sorted "
              "by training instance count ascending (ties by class order), cut into 5 consecutive groups of "
              "equal size; group 1 the rarest")


def eqlv2_groups(instance_counts: Sequence[int], num_groups: int = NUM_GROUPS) -> list[int]:
    """Group (1..num_groups, 1 the rarest) of each class, given its training instance count.

    instance_counts: [C] boxes per class in class order. Returns [C] ints. Raises ValueError when C <
    num_groups (a group would be empty).
    """
    counts = [int(c) for c in instance_counts]
    if len(counts) < num_groups:
        raise ValueError(f"{len(counts)} classes cannot make {num_groups} frequency groups")
    ranked = sorted(range(len(counts)), key=lambda k: (counts[k], k))
    group = [0] * len(counts)
    for g, part in enumerate(np.array_split(np.array(ranked), num_groups)):
        for k in part:
            group[int(k)] = g + 1
    return group


def lvis_frequency(image_count: int) -> str:
    """LVIS's frequency label of a category from its training image count: r (<= 10), c (11-100), f (> 100)."""
    return "r" if image_count <= 10 else "c" if image_count <= 100 else "f"

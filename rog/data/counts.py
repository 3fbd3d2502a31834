"""Per-category training statistics, computed in one place and shared by every objective that needs them."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CategoryCounts:
    """Training-set statistics of C categories, indexed by contiguous label 0..C-1.

    instance_count: [C] annotations per category.
    image_count:    [C] training images containing the category.
    num_images:     training images with at least one annotation (LVIS: 99,388).
    frequency:      C letters 'r' (1-10 images), 'c' (11-100), 'f' (>100), as LVIS defines them.
    """

    instance_count: torch.Tensor
    image_count: torch.Tensor
    num_images: int
    frequency: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return int(self.instance_count.numel())

    @property
    def image_frequency(self) -> torch.Tensor:
        """[C] fraction of annotated training images that contain each category (EQL, GOL, RFS)."""
        return self.image_count.double() / max(self.num_images, 1)

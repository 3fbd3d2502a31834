"""Per-category training statistics: the one class-count type every loss takes.

It lives with the losses (and rog.data re-exports it) so that `import rog.losses` needs no dataset code.
"""
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

    @classmethod
    def from_instance_counts(cls, instance_count) -> "CategoryCounts":
        """Counts known only per instance ([C] numbers), each instance taken as its own image.

        For losses that read instance counts alone (GAP's fixed omega, ECM); image statistics derived
        this way are an assumption, so objectives that read image counts should get `from_lvis`.
        """
        instance = torch.as_tensor(instance_count)
        if instance.dim() != 1 or bool((instance < 0).any()) or instance.is_floating_point() and bool(
                (instance != instance.round()).any()):
            raise ValueError(f"CategoryCounts.from_instance_counts: need [C] non-negative whole numbers, "
                             f"got shape {tuple(instance.shape)} {instance.tolist()[:8]}")
        instance = instance.to(torch.int64)
        return cls(instance_count=instance, image_count=instance.clone(), num_images=int(instance.sum()),
                   frequency=tuple(frequency_group(int(n)) for n in instance))

    @classmethod
    def from_lvis(cls, dataset: dict, category_ids: list[int] | None = None) -> "CategoryCounts":
        """Count an LVIS-format training dict {images, annotations, categories}.

        category_ids: the categories in contiguous-label order (default: the dict's category ids,
        sorted). An annotation whose category is not among them is an error.
        """
        if category_ids is None:
            category_ids = sorted(int(c["id"]) for c in dataset["categories"])
        index = {cid: i for i, cid in enumerate(category_ids)}
        instance_count = [0] * len(category_ids)
        images_of: list[set] = [set() for _ in category_ids]
        annotated_images = set()
        for ann in dataset["annotations"]:
            cid = int(ann["category_id"])
            if cid not in index:
                raise ValueError(f"annotation {ann.get('id')}: category_id {cid} is not a known category")
            instance_count[index[cid]] += 1
            images_of[index[cid]].add(ann["image_id"])
            annotated_images.add(ann["image_id"])
        image_count = [len(s) for s in images_of]
        return cls(
            instance_count=torch.tensor(instance_count, dtype=torch.int64),
            image_count=torch.tensor(image_count, dtype=torch.int64),
            num_images=len(annotated_images),
            frequency=tuple(frequency_group(n) for n in image_count),
        )


def frequency_group(image_count: int) -> str:
    """LVIS frequency group of a category seen in `image_count` training images: r 1-10, c 11-100, f >100.

    A category with no training image is counted as rare ('r'), as LVIS does for its unseen ones.
    """
    if image_count <= 10:
        return "r"
    if image_count <= 100:
        return "c"
    return "f"

"""Train-time transforms on (image float [3, H, W], target) pairs, masks included.

Randomness comes from `generator` (a torch.Generator) when given, else from torch's global RNG,
which the training loader seeds per sample (rog.data.loader).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from rog.data.registry import dataset_spec


class Compose:
    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


def hflip(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """Mirror left-right: image [3, H, W], boxes [N, 4] xyxy, masks [N, H, W]."""
    width = image.shape[-1]
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, 0], boxes[:, 2] = width - target["boxes"][:, 2], width - target["boxes"][:, 0]
    target["boxes"] = boxes
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return image.flip(-1), target


class RandomHorizontalFlip:
    """Flip with probability p. Never use it for LT-Glyphs: a mirrored glyph is not a glyph."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None):
        self.p = p
        self.generator = generator

    def __call__(self, image, target):
        if torch.rand((), generator=self.generator).item() < self.p:
            return hflip(image, target)
        return image, target


def resize(image: torch.Tensor, target: dict, min_size: int, max_size: int) -> tuple[torch.Tensor, dict]:
    """Scale so the shorter side is min_size and the longer at most max_size (aspect kept).

    Image bilinear, masks nearest, boxes and area scaled.
    """
    h, w = image.shape[-2:]
    scale = min(min_size / min(h, w), max_size / max(h, w))
    new_h, new_w = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    if (new_h, new_w) == (h, w):
        return image, target
    image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    target = dict(target)
    sx, sy = new_w / w, new_h / h
    target["boxes"] = target["boxes"] * torch.tensor([sx, sy, sx, sy], dtype=target["boxes"].dtype)
    if "area" in target:
        target["area"] = target["area"] * (sx * sy)
    if "masks" in target:
        masks = target["masks"]
        if masks.shape[0]:
            masks = F.interpolate(masks[None].float(), size=(new_h, new_w), mode="nearest")[0].to(masks.dtype)
        else:
            masks = masks.new_zeros((0, new_h, new_w))
        target["masks"] = masks
    return image, target


class RandomResize:
    """Shorter side drawn from `min_sizes` (multi-scale training), longer side at most `max_size`."""

    def __init__(self, min_sizes: Sequence[int], max_size: int, generator: torch.Generator | None = None):
        if not min_sizes:
            raise ValueError("RandomResize needs at least one size")
        self.min_sizes = list(min_sizes)
        self.max_size = max_size
        self.generator = generator

    def __call__(self, image, target):
        k = int(torch.randint(len(self.min_sizes), (), generator=self.generator))
        return resize(image, target, self.min_sizes[k], self.max_size)


def build_transforms(dataset_params: dict, train: bool) -> Compose | None:
    """Train-time transforms from the dataset params (none at test time: the detector resizes)."""
    name = dataset_params.get("name")
    if dataset_params.get("horizontal_flip") and dataset_spec(name).glyphs:
        raise ValueError(f"dataset.horizontal_flip must stay false for {name}: a mirrored glyph is not a glyph")
    if not train:
        return None
    steps = []
    if dataset_params.get("resize_min_size"):
        steps.append(RandomResize(dataset_params["resize_min_size"], dataset_params["resize_max_size"]))
    if dataset_params.get("horizontal_flip"):
        steps.append(RandomHorizontalFlip(0.5))
    return Compose(steps) if steps else None

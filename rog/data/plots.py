"""Dataset figures: the long tail (categories by training images, log scale, coloured r/c/f) and
sample images with their boxes and masks. Each function returns a matplotlib Figure (no pyplot state)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

GROUP_COLOURS = {"r": "#d62728", "c": "#ff7f0e", "f": "#1f77b4"}
GROUP_NAMES = {"r": "rare (1-10 images)", "c": "common (11-100)", "f": "frequent (>100)"}


def category_label(category: dict) -> str:
    """The glyph itself for LT-Glyphs categories, the LVIS name otherwise."""
    return category.get("glyph") or category["name"]


def plot_category_frequencies(categories: Sequence[dict], title: str = "Training images per category") -> Figure:
    """Bar per category, sorted by image_count (log scale), coloured by frequency group r/c/f.

    categories: LVIS category records with image_count and frequency (train statistics).
    """
    cats = sorted(categories, key=lambda c: (-c["image_count"], c["id"]))
    counts = np.array([max(c["image_count"], 1) for c in cats])
    colours = [GROUP_COLOURS.get(c["frequency"], "grey") for c in cats]
    fig = Figure(figsize=(max(6.0, 0.11 * len(cats)), 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(len(cats)), counts, color=colours, width=0.85)
    ax.set_yscale("log")
    ax.set_xlim(-0.7, len(cats) - 0.3)
    ax.set_ylabel("training images")
    ax.set_title(title)
    for bound in (10, 100):
        ax.axhline(bound, color="grey", lw=0.6, ls="--")
    if len(cats) <= 120:
        ax.set_xticks(np.arange(len(cats)), [category_label(c) for c in cats], fontsize=7, family="monospace")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(cats)} categories, sorted by training images")
    groups = [c["frequency"] for c in cats]
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=f"{GROUP_NAMES[g]}: {groups.count(g)}") for g in "rcf"],
              fontsize=8, loc="upper right")
    return fig


def draw_sample(ax, image, target: dict, labels: Sequence[str], mask_alpha: float = 0.45) -> None:
    """Draw image float [3, H, W] (0..1) with target boxes [N, 4] xyxy, masks [N, H, W] and label names."""
    rgb = np.asarray(image.permute(1, 2, 0).clamp(0, 1).numpy(), dtype=np.float32)
    ax.imshow(rgb, interpolation="nearest")
    boxes = target["boxes"].numpy()
    cmap = np.array([[0.9, 0.1, 0.1], [0.1, 0.7, 0.1], [0.1, 0.3, 0.95], [0.9, 0.6, 0.0], [0.7, 0.1, 0.8],
                     [0.0, 0.7, 0.8]], dtype=np.float32)
    if "masks" in target and len(boxes):
        overlay = np.zeros((*rgb.shape[:2], 4), dtype=np.float32)
        for k, mask in enumerate(target["masks"].numpy().astype(bool)):
            overlay[mask, :3] = cmap[k % len(cmap)]
            overlay[mask, 3] = mask_alpha
        ax.imshow(overlay, interpolation="nearest")
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        colour = cmap[k % len(cmap)]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.8, edgecolor=colour))
        ax.text(x0 - 0.5, y0 - 1, labels[int(target["labels"][k])], fontsize=6, color="white",
                bbox={"facecolor": colour, "pad": 0.5, "lw": 0}, va="bottom")
    ax.set_axis_off()


def plot_samples(dataset, indices: Sequence[int], ncols: int = 4, size: float = 2.2) -> Figure:
    """Grid of dataset items (an LVISDataset) with boxes, masks and category labels drawn."""
    labels = [category_label(c) for c in dataset.categories]
    nrows = -(-len(indices) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, index in zip(axes.flat, indices):
        image, target = dataset[index]
        draw_sample(ax, image, target, labels)
        ax.set_title(f"image {int(target['image_id'])}: {len(target['boxes'])} objects", fontsize=7)
    return fig

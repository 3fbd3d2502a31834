"""Detections drawn on validation images, from a run's detections.json (rog.evaluation.samples) only.

    sample = load_sample(NAME)                               # results/experiments/NAME/detections.json
    detections_figure(sample)                                 # each image: ground truth | predictions
    comparison_figure({"sigmoid CE": a, "sigmoid CE + GAP": b})   # each image: GT | CE | CE + GAP

Boxes are coloured by their class's frequency group (rare red, common orange, frequent blue) and
labelled with the glyph (the category name off LT-Glyphs) and, for a detection, its score.
Predictions shown: the detections with score >= min_score, at most max_shown per image, highest
first, and every detection of a rare class among the recorded ones whatever its score, drawn dashed
below min_score: the low-score rare detections are what a per-image cap K loses. The image is read from the dataset's image root recorded in the sample (relative to the
project root); if it is not there the panel says which file is missing (render the dataset with
`make data` / `dvc repro dataset`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rog.pipeline.registry import RESULTS

GROUP_COLOURS = {"r": "#d62728", "c": "#ff7f0e", "f": "#1f77b4"}  # as rog.data.plots
MIN_SCORE = 0.3
MAX_SHOWN = 15


def shown_rule(min_score: float = MIN_SCORE, max_shown: int = MAX_SHOWN) -> str:
    """What shown_detections draws, as a sentence for the page beside the figure."""
    return (f"Drawn of those: the detections with score >= {min_score:g}, at most {max_shown} per image, and every "
            f"rare-class detection below {min_score:g} (dashed).")


def load_sample(run: str, root: str | Path = ".") -> dict | None:
    """results/experiments/RUN/detections.json below root, None when the run has none."""
    path = Path(root) / RESULTS / run / "detections.json"
    return json.loads(path.read_text()) if path.is_file() else None


def image_path(sample: dict, image: dict, root: str | Path = ".", image_root: str | Path | None = None) -> Path:
    """Where an image of the sample lies: image_root (default: the sample's, below root) / file_name."""
    base = Path(image_root if image_root is not None else sample.get("image_root", ""))
    if not base.is_absolute():
        base = Path(root) / base
    return base / image["file_name"]


def read_image(path: Path) -> np.ndarray | None:
    """uint8 [H, W, 3] of an image file, None when it is missing."""
    from PIL import Image

    if not path.is_file():
        return None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def label(categories: dict, category_id: int) -> str:
    entry = categories.get(str(category_id)) or {}
    return entry.get("glyph") or entry.get("name") or str(category_id)


def shown_detections(image: dict, min_score: float = MIN_SCORE, max_shown: int = MAX_SHOWN,
                     rare: frozenset[int] = frozenset()) -> list[dict]:
    """The detections of a sample image drawn, highest first: score >= min_score, at most max_shown, then
    the detections of `rare` category ids below min_score (all the sample recorded)."""
    ranked = sorted(image["detections"], key=lambda d: -d["score"])
    confident = [d for d in ranked if d["score"] >= min_score][:max_shown]
    return confident + [d for d in ranked if d["score"] < min_score and int(d["category_id"]) in rare]


def draw_boxes(ax, pixels: np.ndarray | None, path: Path, boxes: list[dict], categories: dict, title: str,
               size: tuple[int, int] | None = None, min_score: float = MIN_SCORE) -> None:
    """One panel: the image (or a message naming the missing file) with boxes (xywh) and labels; a
    box with a "score" is labelled with it. size: (height, width) of the image, kept as the panel's
    extent when the pixels are missing."""
    if pixels is None:
        name = str(path)
        lines = "\n".join(name[i:i + 36] for i in range(0, len(name), 36))
        note = ax.text(0.5, 0.5, f"image not found:\n{lines}\n(render the dataset: make data)", ha="center",
                       va="center", fontsize=5, transform=ax.transAxes, clip_on=True)
        note.set_in_layout(False)  # a long path must not squeeze the panels
    else:
        ax.imshow(pixels, interpolation="nearest")
    for box in boxes:
        x, y, w, h = box["bbox"]
        entry = (categories.get(str(box["category_id"])) or {})
        colour = GROUP_COLOURS.get(entry.get("frequency"), "grey")
        faint = "score" in box and box["score"] < min_score  # below the cut shown_detections applied: dashed
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, lw=1.0, edgecolor=colour,
                               ls="--" if faint else "-"))
        text = label(categories, box["category_id"]) + (f" {box['score']:.2f}" if "score" in box else "")
        ax.text(x - 0.5, y - 1, text, fontsize=6, color="white", va="bottom", clip_on=True,
                bbox={"facecolor": colour, "pad": 0.4, "lw": 0, "alpha": 0.85})
    if size is not None:
        ax.set_xlim(-0.5, size[1] - 0.5)
        ax.set_ylim(size[0] - 0.5, -0.5)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def comparison_figure(samples: dict[str, dict], root: str | Path = ".", image_root: str | Path | None = None,
                      min_score: float = MIN_SCORE, max_shown: int = MAX_SHOWN, size: float = 2.3) -> Figure:
    """Rows: the images of the first sample; columns: the ground truth, then each labelled sample's
    detections on the same image. Samples must hold the same images (ValueError naming the
    difference): rog.evaluation.samples chooses them from the ground truth alone."""
    if not samples:
        raise ValueError("no detection samples to draw")
    labels = list(samples)
    first = samples[labels[0]]
    ids = [img["id"] for img in first["images"]]
    for name in labels[1:]:
        other = [img["id"] for img in samples[name]["images"]]
        if other != ids:
            raise ValueError(f"detection samples hold different images: {labels[0]} {ids}, {name} {other}")
    categories = {}
    for sample in samples.values():
        categories.update(sample["categories"])
    rare = frozenset(int(c) for c, entry in categories.items() if entry.get("frequency") == "r")
    fig = Figure(figsize=(size * (1 + len(labels)), size * len(ids) + 0.3), layout="constrained")
    axes = fig.subplots(len(ids), 1 + len(labels), squeeze=False)
    for row, image in enumerate(first["images"]):
        path = image_path(first, image, root, image_root)
        pixels = read_image(path)
        rare_objects = sum(int(g["category_id"]) in rare for g in image["ground_truth"])
        size = (image["height"], image["width"])
        draw_boxes(axes[row, 0], pixels, path, image["ground_truth"], categories,
                   f"image {image['id']}: ground truth ({len(image['ground_truth'])}, {rare_objects} rare)", size)
        for col, name in enumerate(labels, start=1):
            mine = samples[name]["images"][row]
            shown = shown_detections(mine, min_score, max_shown, rare)
            draw_boxes(axes[row, col], pixels, path, shown, categories, f"{name} ({len(shown)} shown)", size, min_score)
    fig.suptitle(f"boxes by frequency group: rare red, common orange, frequent blue\n"
                 f"detections with score >= {min_score} (at most {max_shown} per image), and every rare-class "
                 f"detection among those recorded (detections.json), dashed below {min_score}", fontsize=8)
    return fig


def detections_figure(sample: dict, name: str = "predictions", root: str | Path = ".",
                      image_root: str | Path | None = None, min_score: float = MIN_SCORE,
                      max_shown: int = MAX_SHOWN) -> Figure:
    """One run's sample: each image's ground truth beside its detections (comparison_figure of one)."""
    return comparison_figure({name: sample}, root, image_root, min_score, max_shown)

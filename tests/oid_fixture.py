"""A tiny OpenImages in the real distribution format, generated (no OpenImages data is committed or downloaded).

Six classes under a three-level hierarchy (Entity root, not a class):

    Animal -> Mammal -> Cat, Dog
    Vehicle -> Car
    Boat

Eight training and four validation images (96 x 64 px, JPEG) with coloured rectangles where the boxes
are (a ninth training image has verified labels only, and no file: training needs none); box CSVs with the thirteen V6 columns (group-of boxes among them), the human-verified image-level
labels with verified negatives, the class descriptions (no header) and the hierarchy json, under the
file names of rog.data.openimages' layout.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = [("/m/0animal", "Animal"), ("/m/0mammal", "Mammal"), ("/m/0cat", "Cat"), ("/m/0dog", "Dog"),
           ("/m/0vehicle", "Vehicle"), ("/m/0car", "Car"), ("/m/0boat", "Boat")]
HIERARCHY = {"LabelName": "/m/0bl9f", "Subcategory": [
    {"LabelName": "/m/0animal", "Subcategory": [
        {"LabelName": "/m/0mammal", "Subcategory": [{"LabelName": "/m/0cat"}, {"LabelName": "/m/0dog"}]}]},
    {"LabelName": "/m/0vehicle", "Subcategory": [{"LabelName": "/m/0car"}]},
    {"LabelName": "/m/0boat"}]}
BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
              "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
WIDTH, HEIGHT = 96, 64
COLOURS = {"/m/0cat": (230, 60, 40), "/m/0dog": (40, 200, 60), "/m/0car": (40, 70, 230), "/m/0boat": (230, 220, 40),
           "/m/0mammal": (200, 40, 200), "/m/0animal": (40, 220, 220), "/m/0vehicle": (120, 120, 120)}

# (image, label, (x0, x1, y0, y1) normalised, group_of)
TRAIN_BOXES = [
    ("tr000001", "/m/0cat", (0.05, 0.40, 0.10, 0.70), 0), ("tr000001", "/m/0car", (0.55, 0.95, 0.30, 0.90), 0),
    ("tr000002", "/m/0cat", (0.10, 0.45, 0.20, 0.80), 0), ("tr000002", "/m/0dog", (0.55, 0.90, 0.10, 0.60), 0),
    ("tr000003", "/m/0car", (0.05, 0.50, 0.40, 0.95), 0), ("tr000003", "/m/0car", (0.55, 0.95, 0.05, 0.50), 1),
    ("tr000004", "/m/0cat", (0.30, 0.70, 0.20, 0.90), 0),
    ("tr000005", "/m/0car", (0.10, 0.60, 0.10, 0.60), 0), ("tr000005", "/m/0boat", (0.65, 0.95, 0.50, 0.95), 0),
    ("tr000006", "/m/0dog", (0.20, 0.80, 0.15, 0.85), 0),
    ("tr000007", "/m/0cat", (0.05, 0.35, 0.05, 0.55), 0), ("tr000007", "/m/0car", (0.50, 0.95, 0.40, 0.95), 0),
    ("tr000008", "/m/0mammal", (0.25, 0.75, 0.25, 0.75), 0),
]
VAL_BOXES = [
    ("va000001", "/m/0cat", (0.05, 0.40, 0.10, 0.70), 0), ("va000001", "/m/0car", (0.55, 0.95, 0.30, 0.90), 0),
    ("va000002", "/m/0dog", (0.20, 0.80, 0.15, 0.85), 0),
    ("va000003", "/m/0car", (0.05, 0.95, 0.05, 0.95), 1),
]
# (image, label, confidence): verified present (1) or verified absent (0)
TRAIN_LABELS = [("tr000001", "/m/0cat", 1), ("tr000001", "/m/0car", 1), ("tr000001", "/m/0dog", 0),
                ("tr000002", "/m/0cat", 1), ("tr000002", "/m/0dog", 1), ("tr000003", "/m/0car", 1),
                ("tr000004", "/m/0cat", 1), ("tr000005", "/m/0car", 1), ("tr000005", "/m/0boat", 1),
                ("tr000006", "/m/0dog", 1), ("tr000006", "/m/0vehicle", 0), ("tr000007", "/m/0cat", 1),
                ("tr000007", "/m/0car", 1), ("tr000008", "/m/0mammal", 1),
                ("tr000009", "/m/0boat", 0)]  # labels, no box, no image file: training does not need it
VAL_LABELS = [("va000001", "/m/0cat", 1), ("va000001", "/m/0car", 1), ("va000001", "/m/0boat", 0),
              ("va000002", "/m/0dog", 1), ("va000002", "/m/0animal", 1), ("va000002", "/m/0vehicle", 0),
              ("va000003", "/m/0car", 1), ("va000003", "/m/0mammal", 0),
              ("va000004", "/m/0boat", 0)]  # an image with a verified negative only


def box_rows(boxes) -> list[list[str]]:
    return [[image, "xclick", label, "1", f"{x0:.2f}", f"{x1:.2f}", f"{y0:.2f}", f"{y1:.2f}", "0", "0", str(g), "0", "0"]
            for image, label, (x0, x1, y0, y1), g in boxes]


def write_csv(path: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def draw(path: Path, boxes, seed: int) -> None:
    """A 96 x 64 JPEG: a noisy grey background and a filled rectangle of the class's colour per box."""
    rng = np.random.default_rng(seed)
    a = rng.integers(90, 140, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
    for _, label, (x0, x1, y0, y1), _ in boxes:
        a[int(y0 * HEIGHT):int(y1 * HEIGHT), int(x0 * WIDTH):int(x1 * WIDTH)] = COLOURS[label]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=95)


def write_openimages(root: Path) -> Path:
    """The fixture under `root` (created); returns root. Images in root/images/{train,validation}/."""
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "challenge-2019-classes-description-500.csv", None, [list(c) for c in CLASSES])
    (root / "challenge-2019-label500-hierarchy.json").write_text(json.dumps(HIERARCHY))
    write_csv(root / "challenge-2019-train-detection-bbox.csv", BOX_HEADER, box_rows(TRAIN_BOXES))
    write_csv(root / "challenge-2019-validation-detection-bbox.csv", BOX_HEADER, box_rows(VAL_BOXES))
    for split, labels in (("train", TRAIN_LABELS), ("validation", VAL_LABELS)):
        write_csv(root / f"challenge-2019-{split}-detection-human-imagelabels.csv",
                  ["ImageID", "Source", "LabelName", "Confidence"],
                  [[image, "verification", label, str(c)] for image, label, c in labels])
    for split, boxes, labels in (("train", TRAIN_BOXES, TRAIN_LABELS), ("validation", VAL_BOXES, VAL_LABELS)):
        ids = sorted({b[0] for b in boxes} | ({lab[0] for lab in labels} if split == "validation" else set()))
        for k, image in enumerate(ids):
            draw(root / "images" / split / f"{image}.jpg", [b for b in boxes if b[0] == image], k)
    return root


def dataset_overrides(root: Path) -> list[str]:
    """--set overrides that point the params at the fixture."""
    return [f"dataset.root={root}", "dataset.name=openimages",
            "dataset.train_json=challenge-2019-train-detection-bbox.csv",
            "dataset.val_json=challenge-2019-validation-detection-bbox.csv", "dataset.image_root=images"]

"""Shared by tests/test_data*.py: tiny LT-Glyphs params and a generator of hand-made LVIS files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from rog.config import resolve_run
from rog.data.snapshot import ensure_snapshot as _ensure

ROOT = Path(__file__).resolve().parents[1]


def ensure_snapshot() -> Path:
    """The repo's data/ snapshot, pulled from the in-repo DVC remote on a fresh clone."""
    return _ensure(ROOT / "data")


def tiny_glyph_params(**changes) -> dict:
    """dataset.glyphs of the smoke profile, shrunk further (about 1 s to render)."""
    params = resolve_run(ROOT / "params.yaml", "smoke")["dataset"]["glyphs"]
    params = dict(params, snapshot=str(ensure_snapshot()), num_train=40, num_val=10,
                  min_val_images=2)
    params.update(changes)
    return params


def write_lvis(folder: Path, images: list[dict], annotations: list[dict], categories: list[dict],
               name: str = "data.json", draw: bool = True) -> Path:
    """Write an LVIS json (and, with draw, grey PNGs of each image's size) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if draw:
        for img in images:
            path = folder / img["file_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((img["height"], img["width"], 3), 128, np.uint8)).save(path)
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def image(i: int, h: int = 32, w: int = 48) -> dict:
    return {"id": i, "file_name": f"img/{i}.png", "height": h, "width": w,
            "neg_category_ids": [], "not_exhaustive_category_ids": []}


def category(i: int) -> dict:
    return {"id": i, "name": f"cat{i}", "frequency": "r", "synonyms": [], "def": "",
            "image_count": 0, "instance_count": 0}


def box_annotation(i: int, image_id: int, category_id: int, bbox) -> dict:
    x, y, w, h = bbox
    polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "area": float(w * h), "segmentation": [polygon]}

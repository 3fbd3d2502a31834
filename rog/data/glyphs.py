"""LT-Glyphs: a long-tailed detection dataset of rendered text, written in LVIS v1 format.

Objects are glyphs, one category per printable non-space ASCII character seen in the training
split; category frequencies come from the text they are drawn from (pydoc's documentation topics,
frozen in data/corpus), glyphs are drawn with the fonts frozen in data/fonts. Train text comes from
the first part of the corpus, validation text from the last part (`val_text_fraction`).

Every image is drawn by its own numpy Generator seeded from (seed, split, index), and PNGs are
written by Pillow with fixed settings, so the same params give byte-identical json and images.

Output (`generate(params, out_dir)`)::

    out_dir/train.json, out_dir/val.json     LVIS v1 schema (lvis-api reads them unchanged)
    out_dir/train/000000000001.png ...        file_name = "train/000000000001.png" (relative to out_dir)
    out_dir/val/001000000001.png ...
    out_dir/stats.json                        counts per split and per frequency group

The json files are written last, each to a temporary file renamed into place; any earlier
train.json/val.json/stats.json and train/, val/ folders in out_dir are removed first, so a failed
or interrupted render leaves no dataset that looks complete.

Categories: ids 1..C in code-point order, name = the character's Unicode name in snake case
('latin_small_letter_a', 'full_stop'), plus an extra key "glyph" holding the character itself (lvis-api
ignores it; the plots use it). image_count, instance_count and frequency come from the train split
(CategoryCounts.from_lvis) and are the same in val.json, as in LVIS v1.

Masks are the rendered glyph pixels (antialiased alpha >= 0.5) as RLE, which keeps the holes of
glyphs; boxes are the tight boxes of the masks. Annotation is exhaustive: every category absent
from an image is in its neg_category_ids, not_exhaustive_category_ids is empty.
"""
from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from rog.losses.counts import CategoryCounts
from rog.data.glyph_layout import FontBank, Glyph, TextSource, render_image
from rog.data.snapshot import CORPUS_FILE, FONT_DIR

SPLIT_CODES = {"train": 1, "val": 2, "val_extra": 3}
VAL_ID_OFFSET = 1_000_000_000  # val image ids start above every train id (as COCO/LVIS ids are unique)

REQUIRED_KEYS = (
    "snapshot", "seed", "num_train", "num_val", "image_size", "val_text_fraction", "fonts",
    "glyph_size", "snippets", "snippet_chars", "isolated", "crowded", "background", "distractors",
    "text_colour_contrast", "min_glyph_pixels", "min_val_images", "png_compress_level", "frequency_exponent",
)
THINNING_CODE = 4  # seeds the train text's thinning (distinct from SPLIT_CODES)


class GlyphParamsError(ValueError):
    """The dataset.glyphs parameters are invalid."""


def check_params(params: dict) -> None:
    """Raise GlyphParamsError naming every missing key or out-of-range value of dataset.glyphs."""
    missing = [k for k in REQUIRED_KEYS if k not in params]
    if missing:
        raise GlyphParamsError(f"dataset.glyphs: missing keys {', '.join(missing)}")
    for key in ("glyph_size", "snippets", "snippet_chars", "isolated", "distractors"):
        lo_hi = params[key]
        if not (isinstance(lo_hi, (list, tuple)) and len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1]):
            raise GlyphParamsError(f"dataset.glyphs.{key}: expected [low, high] with 0 <= low <= high, got {lo_hi}")
    if params["glyph_size"][1] > params["image_size"] // 2:
        raise GlyphParamsError("dataset.glyphs.glyph_size: glyphs must be at most half the image size")
    if not params["fonts"]:
        raise GlyphParamsError("dataset.glyphs.fonts: empty font list")
    if not 0.0 < params["val_text_fraction"] < 1.0:
        raise GlyphParamsError("dataset.glyphs.val_text_fraction: must be in (0, 1)")
    if not float(params["frequency_exponent"]) >= 1.0:
        raise GlyphParamsError(f"dataset.glyphs.frequency_exponent: must be >= 1 (1 keeps the text's "
                               f"frequencies), got {params['frequency_exponent']}")


def load_corpus(snapshot: str | Path) -> str:
    path = Path(snapshot) / CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: corpus missing; run `dvc pull data.dvc` (or `make data`) first")
    return path.read_text(encoding="ascii").strip()


def load_fonts(snapshot: str | Path, names: Iterable[str]) -> FontBank:
    paths = tuple(Path(snapshot) / FONT_DIR / name for name in names)
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: font missing from the data snapshot; run `dvc pull data.dvc`")
    return FontBank(paths)


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """Disjoint train/val parts: the first (1 - val_fraction) of the corpus and the rest."""
    cut = int(round(len(text) * (1.0 - val_fraction)))
    return text[:cut], text[cut:]


def thin_text(text: str, exponent: float, seed: int) -> str:
    """`text` with each occurrence of a character c kept with probability (n_c / n_max)^(exponent - 1),
    n_c its count in `text` (spaces always kept): the category frequencies become ~ n_c^exponent.

    exponent 1 returns `text` unchanged. The most frequent character keeps all its occurrences and the
    rarest lose the most, so the tail grows longer against the head (LVIS's imbalance is steeper than
    the documentation text's). Deterministic from `seed`.
    """
    if exponent == 1.0:
        return text
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    codes, inverse, counts = np.unique(chars, return_inverse=True, return_counts=True)
    space = codes == ord(" ")
    top = counts[~space].max()
    keep_probability = np.where(space, 1.0, (counts / top) ** (float(exponent) - 1.0))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), THINNING_CODE]))
    kept = chars[rng.random(chars.size) < keep_probability[inverse]]
    return kept.tobytes().decode("utf-32-le")


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]))


def category_name(char: str) -> str:
    """'a' -> 'latin_small_letter_a', '.' -> 'full_stop' (unique, filename-safe)."""
    return unicodedata.name(char).lower().replace(" ", "_").replace("-", "_")


def make_categories(chars: Iterable[str]) -> list[dict]:
    """LVIS category records, ids 1..C in code-point order; statistics filled in later."""
    return [
        {"id": i, "name": category_name(ch), "synonyms": [category_name(ch)], "glyph": ch,
         "def": f"the printed character {ch!r} (U+{ord(ch):04X}) in any of the dataset's fonts",
         "frequency": "r", "image_count": 0, "instance_count": 0}
        for i, ch in enumerate(sorted(set(chars)), start=1)
    ]


def encode_glyphs(glyphs: list[Glyph], image_size: int) -> list[tuple[str, list[float], float, dict]]:
    """(char, bbox xywh, area, RLE with str counts) for each glyph, via pycocotools."""
    from pycocotools import mask as mask_utils

    out = []
    for g in glyphs:
        full = np.zeros((image_size, image_size), dtype=np.uint8)
        h, w = g.mask.shape
        full[g.y:g.y + h, g.x:g.x + w] = g.mask
        rle = mask_utils.encode(np.asfortranarray(full))
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        area = float(mask_utils.area(rle))
        out.append((g.char, bbox, area, {"size": [int(s) for s in rle["size"]],
                                         "counts": rle["counts"].decode("ascii")}))
    return out


def write_png(path: Path, rgb: np.ndarray, compress_level: int) -> None:
    Image.fromarray(rgb, mode="RGB").save(path, format="PNG", compress_level=int(compress_level), optimize=False)


def write_json_atomic(path: Path, obj) -> None:
    """Write json to a temporary file next to `path`, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


class _SplitWriter:
    """Accumulates one split's LVIS images/annotations and writes its PNGs."""

    def __init__(self, out_dir: Path, split_dir: str, params: dict, id_offset: int):
        self.dir = out_dir / split_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split_dir = split_dir
        self.params = params
        self.id_offset = id_offset
        self.images: list[dict] = []
        self.annotations: list[tuple[int, str, list[float], float, dict]] = []  # image_id, char, ...

    def add(self, rgb: np.ndarray, glyphs: list[Glyph]) -> set[str]:
        image_id = self.id_offset + len(self.images) + 1
        file_name = f"{self.split_dir}/{image_id:012d}.png"
        write_png(self.dir.parent / file_name, rgb, self.params["png_compress_level"])
        size = self.params["image_size"]
        self.images.append({"id": image_id, "file_name": file_name, "height": size, "width": size,
                            "neg_category_ids": [], "not_exhaustive_category_ids": []})
        for char, bbox, area, rle in encode_glyphs(glyphs, size):
            self.annotations.append((image_id, char, bbox, area, rle))
        return {g.char for g in glyphs}

    def to_lvis(self, categories: list[dict], ann_id_offset: int) -> dict:
        cat_of = {c["glyph"]: c["id"] for c in categories}
        present: dict[int, set] = {img["id"]: set() for img in self.images}
        annotations = []
        for k, (image_id, char, bbox, area, rle) in enumerate(self.annotations, start=1):
            cid = cat_of[char]
            present[image_id].add(cid)
            annotations.append({"id": ann_id_offset + k, "image_id": image_id, "category_id": cid,
                                "bbox": bbox, "area": area, "segmentation": rle})
        all_ids = [c["id"] for c in categories]
        images = [dict(img, neg_category_ids=[c for c in all_ids if c not in present[img["id"]]])
                  for img in self.images]
        return {"info": {"description": "LT-Glyphs (rog)", "version": "1.0"}, "licenses": [],
                "images": images, "annotations": annotations, "categories": categories}


def fill_statistics(categories: list[dict], train: dict) -> list[dict]:
    """Categories with image_count, instance_count and frequency computed from the train dict."""
    counts = CategoryCounts.from_lvis(train, [c["id"] for c in categories])
    return [dict(c, image_count=int(counts.image_count[i]), instance_count=int(counts.instance_count[i]),
                 frequency=counts.frequency[i]) for i, c in enumerate(categories)]


def generate(params: dict, out_dir: str | Path, progress: Callable[[int], None] | None = None,
             text: str | None = None) -> dict:
    """Render LT-Glyphs with `params` (the dataset.glyphs section) into `out_dir`. Returns the stats.

    progress: called with the number of images just written (for a progress bar); the total is
    num_train + num_val + the extra validation images (at most min_val_images per category).
    text: the text drawn from instead of the snapshot's corpus (the pretraining glyphs' balanced text).
    The train part is thinned by `frequency_exponent` (`thin_text`); the val part keeps the text's own
    frequencies, so that every category's AP is measured on as many natural occurrences as it has.
    """
    check_params(params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("train.json", "val.json", "stats.json"):  # a crash must not leave a stale dataset
        (out_dir / name).unlink(missing_ok=True)
    for split_dir in ("train", "val"):  # nor PNGs of an earlier, larger render
        if (out_dir / split_dir).is_dir():
            shutil.rmtree(out_dir / split_dir)
    text = load_corpus(params["snapshot"]) if text is None else text
    fonts = load_fonts(params["snapshot"], params["fonts"])
    train_part, val_part = split_text(text, params["val_text_fraction"])
    train_text = TextSource(thin_text(train_part, float(params["frequency_exponent"]), params["seed"]))
    val_text = TextSource(val_part)
    tick = progress or (lambda n: None)

    train = _SplitWriter(out_dir, "train", params, 0)
    for i in range(params["num_train"]):
        rgb, glyphs = render_image(image_rng(params["seed"], "train", i), train_text, fonts, params, None)
        train.add(rgb, glyphs)
        tick(1)
    categories = make_categories(ch for _, ch, *_ in train.annotations)
    allowed = {c["glyph"] for c in categories}

    val = _SplitWriter(out_dir, "val", params, VAL_ID_OFFSET)
    val_images_of = {ch: 0 for ch in allowed}
    for i in range(params["num_val"]):
        rgb, glyphs = render_image(image_rng(params["seed"], "val", i), val_text, fonts, params, allowed)
        for ch in val.add(rgb, glyphs):
            val_images_of[ch] += 1
        tick(1)
    # Extra validation images for the categories the val text shows too rarely: a val-text snippet
    # around an occurrence of the character, or (absent from the val text) the glyph drawn isolated.
    extra = 0
    for ch in sorted(allowed):
        attempt = 0
        while val_images_of[ch] < params["min_val_images"]:
            rng = image_rng(params["seed"], "val_extra", ord(ch) * 1000 + attempt)
            attempt += 1
            if attempt > 1000:
                raise RuntimeError(f"could not draw a validation image containing {ch!r}")
            rgb, glyphs = render_image(rng, val_text, fonts, params, allowed, must_contain=ch)
            if ch not in {g.char for g in glyphs}:
                continue
            for c in val.add(rgb, glyphs):
                val_images_of[c] += 1
            extra += 1
            tick(1)

    train_dict = train.to_lvis(categories, 0)
    categories = fill_statistics(categories, train_dict)
    train_dict["categories"] = categories
    val_dict = val.to_lvis(categories, 10 * VAL_ID_OFFSET)
    write_json_atomic(out_dir / "train.json", train_dict)
    write_json_atomic(out_dir / "val.json", val_dict)
    stats = dataset_stats(train_dict, val_dict)
    stats["val_extra_images"] = extra
    write_json_atomic(out_dir / "stats.json", stats)
    return stats


def dataset_stats(train: dict, val: dict) -> dict:
    groups = [c["frequency"] for c in train["categories"]]
    val_images: dict[int, set] = {}
    for a in val["annotations"]:
        val_images.setdefault(a["category_id"], set()).add(a["image_id"])
    return {
        "categories": len(groups),
        "rare": groups.count("r"), "common": groups.count("c"), "frequent": groups.count("f"),
        "train_images": len(train["images"]), "train_annotations": len(train["annotations"]),
        "val_images": len(val["images"]), "val_annotations": len(val["annotations"]),
        "min_val_images_per_category": min((len(val_images.get(c["id"], ())) for c in train["categories"]),
                                           default=0),
    }

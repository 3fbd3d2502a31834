"""Which LT-Glyphs categories look alike: shape similarity of the glyphs rendered in the dataset's fonts.

A glyph's *shape* is its ink (coverage >= 0.5) rendered at RENDER_SIZE px, cut to its tight box and
scaled, aspect kept, so that its longer side is SHAPE_SIZE px, centred on a SHAPE_SIZE x SHAPE_SIZE
canvas. Glyphs are drawn at random sizes (dataset.glyphs.glyph_size), so absolute size says little
about the class; shape does. The similarity of two characters is the mean, over the fonts that draw
both, of the IoU of their shapes in the same font. Two categories are *look-alikes* when their
similarity is at least LOOKALIKE_IOU = 0.5, detection's own match threshold: e.g. V/v 0.66, X/x 0.65,
G/C 0.64, 9/g 0.59, !/l 0.59, l/I 0.75, o/O 0.72 (Y/y 0.44 and m/n 0.27 are not).

    shapes = glyph_shapes(fonts, chars)        # bool [C, F, S, S], ink [C, F]
    sim = shape_similarity(shapes, ink)        # [C, C], 1 on the diagonal
    pairs = lookalikes(categories, snapshot, font_names)   # {category id: [(id, similarity), ...]}
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from rog.data.glyph_layout import FontBank

RENDER_SIZE = 64    # font size in pixels of the rendering the shapes are cut from
SHAPE_SIZE = 32     # side of the canvas a shape is scaled into
LOOKALIKE_IOU = 0.5


def normalise_shape(ink: np.ndarray, size: int = SHAPE_SIZE) -> np.ndarray | None:
    """bool [size, size]: `ink` (bool [h, w]) cut to its tight box, scaled (nearest after bilinear,
    threshold 0.5) so its longer side is `size`, aspect kept, centred. None when there is no ink."""
    ys, xs = np.nonzero(ink)
    if not len(ys):
        return None
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    image = Image.fromarray(crop.astype(np.uint8) * 255).resize((nw, nh), Image.BILINEAR)
    out = np.zeros((size, size), dtype=bool)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = np.asarray(image) >= 128
    return out


def glyph_shapes(fonts: FontBank, chars: Sequence[str], render_size: int = RENDER_SIZE,
                 size: int = SHAPE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(shapes bool [C, F, size, size], drawn bool [C, F]) of each character in each font; drawn is
    False where the font draws no ink for the character (its shape is then all False)."""
    shapes = np.zeros((len(chars), len(fonts), size, size), dtype=bool)
    drawn = np.zeros((len(chars), len(fonts)), dtype=bool)
    for c, char in enumerate(chars):
        for f in range(len(fonts)):
            bitmap, _, _ = fonts.bitmap(f, render_size, char)
            shape = normalise_shape(bitmap >= 128, size)
            if shape is not None:
                shapes[c, f], drawn[c, f] = shape, True
    return shapes, drawn


def shape_similarity(shapes: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """[C, C] mean over fonts drawing both characters of the IoU of their shapes (0 where no font
    draws both); shapes bool [C, F, S, S], drawn bool [C, F]."""
    flat = shapes.reshape(shapes.shape[0], shapes.shape[1], -1).astype(np.float32)
    inter = np.einsum("cfp,dfp->cdf", flat, flat)
    area = flat.sum(-1)
    union = area[:, None, :] + area[None, :, :] - inter
    both = drawn[:, None, :] & drawn[None, :, :]
    iou = np.where(both, inter / np.maximum(union, 1.0), 0.0)
    count = both.sum(-1)
    return np.where(count > 0, iou.sum(-1) / np.maximum(count, 1), 0.0)


def lookalike_pairs(category_ids: Sequence[int], similarity: np.ndarray, threshold: float = LOOKALIKE_IOU
                    ) -> dict[int, list[tuple[int, float]]]:
    """{id: [(other id, similarity), ...]} of every category's look-alikes (similarity >= threshold),
    most similar first (ties by id); a category is not its own look-alike."""
    out = {}
    for i, cid in enumerate(category_ids):
        others = [(int(category_ids[j]), round(float(similarity[i, j]), 4)) for j in range(len(category_ids))
                  if j != i and similarity[i, j] >= threshold]
        out[int(cid)] = sorted(others, key=lambda p: (-p[1], p[0]))
    return out


def lookalikes(categories: Sequence[dict], snapshot: str | Path, font_names: Sequence[str],
               threshold: float = LOOKALIKE_IOU) -> dict[int, list[tuple[int, float]]]:
    """The look-alikes of LT-Glyphs categories (records with "id" and "glyph"), drawn with the fonts
    `font_names` of the data snapshot (FileNotFoundError naming a missing font file)."""
    from rog.data.glyphs import load_fonts

    missing = [c.get("id") for c in categories if not c.get("glyph")]
    if missing:
        raise ValueError(f"categories {missing[:5]} have no 'glyph': look-alikes are defined for LT-Glyphs only")
    fonts = load_fonts(snapshot, font_names)
    shapes, drawn = glyph_shapes(fonts, [c["glyph"] for c in categories])
    return lookalike_pairs([int(c["id"]) for c in categories], shape_similarity(shapes, drawn), threshold)

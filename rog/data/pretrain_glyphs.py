"""Pretraining glyphs: a balanced classification set of characters that are no LT-Glyphs category.

The backbone is pretrained once on these (rog.engine.pretrain), our analogue of ImageNet, so it must
never see an LT-Glyphs class, in particular a rare one: not the character, not a homoglyph of it
(Cyrillic 'о', Greek 'Ο', '−' for '-'), not a character built on it ('é', 'Ё' on Cyrillic 'Е', '…').

The character set (`select_chars`) is every code point all fonts have (their cmaps) that passes:

1. rules: not ASCII; a letter, number or symbol (no punctuation, dashes, quotes, spacing accents or
   modifier letters, which mimic ASCII punctuation); not Latin script (IPA and Latin extensions are
   ASCII letters with hooks, bars, turned or in small capitals); its NFKD form holds no ASCII
   character ('²', '™', 'ﬁ', accented letters).
2. shape: its `similarity` to every ASCII category stays below `max_similarity`, in every font: the
   best IoU of the ink masks aligned by bounding box, at the same size and scaled to the same box.
3. a character whose NFD base fails 2 fails too ('Ё' on 'Е', 'ΐ' on 'ι').

Every ASCII printable character counts as a category here (LT-Glyphs uses those seen in its text,
a subset). The pretraining images are LT-Glyphs images (rog.data.glyphs.generate, the same style and
layout) drawn from `balanced_text`: words of these characters, each equally frequent.
"""
from __future__ import annotations

import string
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from rog.data.glyph_layout import FontBank

ASCII_CATEGORIES = tuple(c for c in string.printable if not c.isspace())
SIMILARITY_SIZE = 48   # font size of the shape comparison (about glyph_size's upper end)
SCALED_SIDE = 32       # side of the scale-normalised masks
TEXT_CODE = 13  # seeds the balanced text (distinct from rog.data.glyphs' codes)


def font_chars(path: str | Path) -> set[str]:
    """The characters a font maps to a glyph (its cmap): a missing one would draw .notdef's box."""
    from fontTools.ttLib import TTFont

    return {chr(c) for c in TTFont(str(path), lazy=True).getBestCmap()}


def allowed_by_rules(char: str) -> bool:
    """Rule 1 of the module docstring."""
    kind = unicodedata.category(char)
    if ord(char) < 128 or kind[0] not in "LNS" or kind in ("Sk", "Lm"):
        return False
    if unicodedata.name(char, "").startswith("LATIN"):
        return False
    return not any(c in ASCII_CATEGORIES for c in unicodedata.normalize("NFKD", char))


def ink_mask(fonts: FontBank, font: int, size: int, char: str) -> np.ndarray:
    """bool [h, w]: the glyph's ink (coverage >= 128) cropped to its bounding box ([1, 1] if none)."""
    mask = fonts.bitmap(font, size, char)[0] >= 128
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros((1, 1), dtype=bool)
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def aligned_forms(mask: np.ndarray, canvas: int) -> tuple[np.ndarray, np.ndarray]:
    """Two bounding-box alignments of an ink mask, flattened: (centred on a [canvas, canvas] grid at
    its own size, bool [canvas^2]; padded to a square and resized to SCALED_SIDE, bool [SCALED_SIDE^2])."""
    h, w = mask.shape
    same = np.zeros((canvas, canvas), dtype=bool)
    ch, cw = min(h, canvas), min(w, canvas)
    oy, ox = (canvas - ch) // 2, (canvas - cw) // 2
    same[oy:oy + ch, ox:ox + cw] = mask[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.uint8)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = 255 * mask
    scaled = np.asarray(Image.fromarray(square).resize((SCALED_SIDE, SCALED_SIDE), Image.BILINEAR)) >= 128
    return same.ravel(), scaled.ravel()


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """bool [A, P], bool [B, P] -> IoU [A, B]."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None, :] - inter, 1.0)


def similarity(fonts: FontBank, chars: list[str], categories: list[str] = list(ASCII_CATEGORIES),
               size: int = SIMILARITY_SIZE) -> np.ndarray:
    """[len(chars), len(categories)]: the best mask IoU over fonts and both alignments of
    `aligned_forms` (same size, same box), the glyphs drawn at font size `size`."""
    best = np.zeros((len(chars), len(categories)), dtype=np.float32)
    for font in range(len(fonts)):
        forms_a = [aligned_forms(ink_mask(fonts, font, size, c), 2 * size) for c in chars]
        forms_b = [aligned_forms(ink_mask(fonts, font, size, c), 2 * size) for c in categories]
        for k in range(2):
            iou = _iou(np.stack([f[k] for f in forms_a]), np.stack([f[k] for f in forms_b]))
            np.maximum(best, iou, out=best)
    return best


def select_chars(fonts: FontBank, max_similarity: float, max_classes: int) -> str:
    """The pretraining characters (module docstring), in code-point order; at most `max_classes`,
    evenly spaced over that order when more pass."""
    common = set.intersection(*(font_chars(p) for p in fonts.paths))
    pool = sorted(c for c in common if allowed_by_rules(c))
    if not pool:
        return ""
    kept = {c for c, s in zip(pool, similarity(fonts, pool).max(axis=1)) if s < max_similarity}
    chars = [c for c in pool if c in kept and unicodedata.normalize("NFD", c)[0] in kept]
    if len(chars) > max_classes:
        chars = [chars[i] for i in np.linspace(0, len(chars) - 1, max_classes).round().astype(int)]
    return "".join(chars)


def balanced_text(chars: str, length: int, seed: int, word: tuple[int, int] = (2, 8)) -> str:
    """`length` characters of words drawn uniformly from `chars` (word lengths uniform in `word`), single
    spaces between them: the pretraining detector's text, every class equally frequent. Deterministic."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), TEXT_CODE]))
    pool = np.array(list(chars))
    pieces, total = [], 0
    while total < length:
        piece = "".join(pool[rng.integers(0, len(pool), size=int(rng.integers(word[0], word[1] + 1)))])
        pieces.append(piece)
        total += len(piece) + 1
    return " ".join(pieces)[:length]

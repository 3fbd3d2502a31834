"""Drawing one LT-Glyphs image: background, clutter, text runs laid out without overlap, noise.

A *run* is a piece of text drawn in one font, size and colour along one baseline; each character
is drawn on its own at the pen position given by the font's advances (no kerning, Pillow's basic
layout), so each glyph's mask is exactly its own coverage (alpha >= 0.5). Runs never overlap one
another (their ink boxes are kept `RUN_GAP` pixels apart) and always lie fully inside the image, so
no glyph is cut by the border. A glyph with fewer than `min_glyph_pixels` mask pixels is not drawn
at all, so nothing visible goes unannotated.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARGIN = 1      # pixels kept free along the image border
RUN_GAP = 2     # pixels kept free between the ink boxes of two runs
PLACEMENT_TRIES = 30


@dataclass(frozen=True)
class Glyph:
    """One drawn glyph: its character, top-left corner (x, y) and mask uint8 [h, w] (0/1)."""

    char: str
    x: int
    y: int
    mask: np.ndarray


class FontBank:
    """The dataset's fonts; fonts loaded once per size, bitmaps and advances cached per (font, size, char)."""

    def __init__(self, paths: tuple[Path, ...]):
        self.paths = tuple(paths)
        self._fonts: dict = {}
        self._bitmaps: dict = {}
        self._advances: dict = {}

    def __len__(self) -> int:
        return len(self.paths)

    def font(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        key = (index, size)
        if key not in self._fonts:
            self._fonts[key] = ImageFont.truetype(str(self.paths[index]), size=size,
                                                  layout_engine=ImageFont.Layout.BASIC)
        return self._fonts[key]

    def advance(self, index: int, size: int, char: str) -> float:
        key = (index, size, char)
        if key not in self._advances:
            self._advances[key] = self.font(index, size).getlength(char)
        return self._advances[key]

    def bitmap(self, index: int, size: int, char: str) -> tuple[np.ndarray, int, int]:
        """Coverage uint8 [h, w] of `char` and its offset (dx, dy) from (pen x, baseline y)."""
        key = (index, size, char)
        if key not in self._bitmaps:
            font = self.font(index, size)
            x0, y0, x1, y1 = font.getbbox(char, anchor="ls")
            w, h = max(x1 - x0, 1), max(y1 - y0, 1)
            canvas = Image.new("L", (w, h), 0)
            ImageDraw.Draw(canvas).text((-x0, -y0), char, font=font, fill=255, anchor="ls")
            self._bitmaps[key] = (np.asarray(canvas, dtype=np.uint8), int(x0), int(y0))
        return self._bitmaps[key]


@dataclass
class Run:
    """Characters in one font/size; pens[k] is char k's pen x relative to the run's origin.

    drawn: indices of the characters that will be drawn; box: their ink box (x0, y0, x1, y1)
    relative to (origin x, baseline), exclusive upper bounds.
    """

    chars: str
    font: int
    size: int
    pens: list[int]
    drawn: list[int]
    box: tuple[int, int, int, int]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def make_run(fonts: FontBank, font: int, size: int, chars: str, allowed: set | None,
             min_pixels: int) -> Run | None:
    """Lay out `chars` on one baseline; None if no character would be drawn."""
    pens, pen = [], 0.0
    for ch in chars:
        pens.append(int(round(pen)))
        pen += fonts.advance(font, size, ch)
    drawn, boxes = [], []
    for k, ch in enumerate(chars):
        if ch == " " or (allowed is not None and ch not in allowed):
            continue
        bitmap, dx, dy = fonts.bitmap(font, size, ch)
        if int((bitmap >= 128).sum()) < min_pixels:
            continue
        drawn.append(k)
        boxes.append((pens[k] + dx, dy, pens[k] + dx + bitmap.shape[1], dy + bitmap.shape[0]))
    if not drawn:
        return None
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return Run(chars, font, size, pens, drawn, box)


def fit_run(fonts: FontBank, font: int, size: int, chars: str, allowed: set | None, min_pixels: int,
            max_width: int, keep: int | None = None) -> Run | None:
    """The longest piece of `chars` whose ink fits in `max_width`, trimmed from the end (or from the
    side away from index `keep`, which stays in)."""
    lo, hi = 0, len(chars)
    while hi > lo:
        run = make_run(fonts, font, size, chars[lo:hi], allowed, min_pixels)
        if run is None:
            return None
        if run.width <= max_width:
            return run
        if keep is not None and hi - 1 <= keep:
            lo += 1
        elif keep is not None and lo < keep and (keep - lo) > (hi - 1 - keep):
            lo += 1
        else:
            hi -= 1
    return None


def _range(rng: np.random.Generator, lo_hi) -> int:
    return int(rng.integers(int(lo_hi[0]), int(lo_hi[1]) + 1))


def _overlaps(box, boxes) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] + RUN_GAP and b[0] < x1 + RUN_GAP and y0 < b[3] + RUN_GAP and b[1] < y1 + RUN_GAP
               for b in boxes)


def place_run(rng: np.random.Generator, run: Run, size: int, taken: list) -> tuple[int, int] | None:
    """Origin (x, baseline) where the run's ink lies inside the image, clear of `taken` boxes."""
    x_lo, x_hi = MARGIN - run.box[0], size - MARGIN - run.box[2]
    y_lo, y_hi = MARGIN - run.box[1], size - MARGIN - run.box[3]
    if x_hi < x_lo or y_hi < y_lo:
        return None
    for _ in range(PLACEMENT_TRIES):
        x, y = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
        box = (x + run.box[0], y + run.box[1], x + run.box[2], y + run.box[3])
        if not _overlaps(box, taken):
            taken.append(box)
            return x, y
    return None


def background(rng: np.random.Generator, size: int, params: dict) -> tuple[np.ndarray, float]:
    """Float32 [S, S, 3] background (light or dark, blotches, low-contrast distractor shapes)
    and its mean luminance."""
    bg = params["background"]
    light = bool(rng.random() < 0.5)
    base = rng.uniform(*bg["light"], size=3) if light else rng.uniform(*bg["dark"], size=3)
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = base.astype(np.float32)
    if rng.random() < bg["blotch_fraction"]:
        grid = rng.normal(0.0, bg["blotch_amplitude"], size=(4, 4, 3)).astype(np.float32)
        for c in range(3):
            img[:, :, c] += np.asarray(Image.fromarray(grid[:, :, c], mode="F").resize((size, size),
                                                                                      Image.BILINEAR))
    for _ in range(_range(rng, params["distractors"])):
        shape = Image.new("L", (size, size), 0)
        w, h = rng.uniform(0.3, 0.9, size=2) * size
        cx, cy = rng.uniform(0, size, size=2)
        xy = [float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2)]
        draw = ImageDraw.Draw(shape)
        if rng.random() < 0.5:
            draw.ellipse(xy, fill=255)
        else:
            draw.rectangle(xy, fill=255)
        shift = rng.uniform(*bg["distractor_contrast"]) * (-1.0 if light else 1.0)
        img[np.asarray(shape) > 0] += np.float32(shift)
    return img, float(base.mean())


def text_colour(rng: np.random.Generator, bg_lum: float, contrast: float) -> np.ndarray:
    """RGB float32 [3] at least `contrast` luminance away from the background."""
    if bg_lum >= 128:
        lum = rng.uniform(0.0, max(bg_lum - contrast, 0.0))
    else:
        lum = rng.uniform(min(bg_lum + contrast, 255.0), 255.0)
    return np.clip(lum + rng.uniform(-20, 20, size=3), 0, 255).astype(np.float32)


def draw_run(img: np.ndarray, fonts: FontBank, run: Run, x: int, y: int, colour: np.ndarray) -> list[Glyph]:
    """Composite the run's glyphs onto img (in place) at origin (x, baseline y)."""
    glyphs = []
    for k in run.drawn:
        bitmap, dx, dy = fonts.bitmap(run.font, run.size, run.chars[k])
        gx, gy = x + run.pens[k] + dx, y + dy
        h, w = bitmap.shape
        alpha = (bitmap.astype(np.float32) / 255.0)[:, :, None]
        patch = img[gy:gy + h, gx:gx + w]
        patch *= 1.0 - alpha
        patch += alpha * colour
        glyphs.append(Glyph(run.chars[k], gx, gy, (bitmap >= 128).astype(np.uint8)))
    return glyphs


class TextSource:
    """Random pieces of one text (train or val part of the corpus), with character lookup."""

    def __init__(self, text: str):
        self.text = text
        self._positions: dict[str, np.ndarray] = {}

    def piece(self, rng: np.random.Generator, length: int) -> str:
        start = int(rng.integers(0, max(len(self.text) - length, 1)))
        return self.text[start:start + length]

    def piece_with(self, rng: np.random.Generator, length: int, char: str) -> tuple[str, int] | None:
        """A piece containing `char` and its index in the piece; None if the text has no `char`."""
        if char not in self._positions:
            self._positions[char] = np.array([i for i, c in enumerate(self.text) if c == char], dtype=np.int64)
        positions = self._positions[char]
        if positions.size == 0:
            return None
        p = int(positions[rng.integers(0, positions.size)])
        start = max(0, min(p - int(rng.integers(0, length)), len(self.text) - length))
        return self.text[start:start + length], p - start


def render_image(rng: np.random.Generator, source: TextSource, fonts: FontBank, params: dict,
                 allowed: set | None, must_contain: str | None = None) -> tuple[np.ndarray, list[Glyph]]:
    """Draw one image. Returns (rgb uint8 [S, S, 3], glyphs).

    allowed: characters that may be drawn (None: all; val images draw only train categories).
    must_contain: draw this character first (a val-text piece around it, or the glyph on its own
    when the text lacks it); the caller checks that it was drawn.
    """
    size = int(params["image_size"])
    img, bg_lum = background(rng, size, params)
    min_px = int(params["min_glyph_pixels"])
    taken: list = []
    glyphs: list[Glyph] = []

    def add(run: Run | None) -> None:
        if run is None:
            return
        origin = place_run(rng, run, size, taken)
        if origin is not None:
            glyphs.extend(draw_run(img, fonts, run, *origin, text_colour(rng, bg_lum, params["text_colour_contrast"])))

    def font_and_size(size_range) -> tuple[int, int]:
        return int(rng.integers(0, len(fonts))), _range(rng, size_range)

    if must_contain is not None:
        font, glyph_size = font_and_size(params["glyph_size"])
        found = source.piece_with(rng, _range(rng, params["snippet_chars"]), must_contain)
        piece, keep = found if found is not None else (must_contain, 0)
        add(fit_run(fonts, font, glyph_size, piece, allowed, min_px, size - 2 * MARGIN, keep))

    crowded = params["crowded"]
    if must_contain is None and rng.random() < crowded["fraction"]:
        font, glyph_size = font_and_size(crowded["glyph_size"])
        ascent, descent = fonts.font(font, glyph_size).getmetrics()
        baseline = MARGIN + ascent
        while baseline + descent <= size - MARGIN:
            run = fit_run(fonts, font, glyph_size, source.piece(rng, 3 * size // glyph_size), allowed,
                          min_px, size - 2 * MARGIN)
            if run is not None and MARGIN <= baseline + run.box[1] and baseline + run.box[3] <= size - MARGIN:
                x = MARGIN - run.box[0]
                taken.append((x + run.box[0], baseline + run.box[1], x + run.box[2], baseline + run.box[3]))
                glyphs.extend(draw_run(img, fonts, run, x, baseline,
                                       text_colour(rng, bg_lum, params["text_colour_contrast"])))
            baseline += ascent + descent + int(crowded["line_gap"])
    else:
        for _ in range(_range(rng, params["snippets"])):
            font, glyph_size = font_and_size(params["glyph_size"])
            piece = source.piece(rng, _range(rng, params["snippet_chars"]))
            add(fit_run(fonts, font, glyph_size, piece.strip() or piece, allowed, min_px, size - 2 * MARGIN))
        for _ in range(_range(rng, params["isolated"])):
            font, glyph_size = font_and_size(params["glyph_size"])
            piece = source.piece(rng, 8).replace(" ", "")
            if piece:
                add(make_run(fonts, font, glyph_size, piece[0], allowed, min_px))

    return add_noise(rng, img, params), glyphs


def add_noise(rng: np.random.Generator, img: np.ndarray, params: dict) -> np.ndarray:
    """Gaussian pixel noise on a fraction of the images, then rounding: float32 [S, S, 3] -> uint8."""
    noise = params["background"]
    if rng.random() < noise["noise_fraction"]:
        img += rng.normal(0.0, rng.uniform(*noise["noise_sigma"]), size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)

"""Dataset figures: one bar per category coloured by group; samples drawn with boxes and masks."""
from __future__ import annotations

import matplotlib.colors as mcolors

from data_helpers import tiny_glyph_params
from rog.data import LVISDataset
from rog.data.glyphs import generate
from rog.data.plots import GROUP_COLOURS, plot_category_frequencies, plot_samples


def test_figures(tmp_path):
    generate(tiny_glyph_params(num_train=12, num_val=0, min_val_images=0), tmp_path)
    ds = LVISDataset(tmp_path / "train.json")
    fig = plot_category_frequencies(ds.categories)
    bars = fig.axes[0].patches
    assert len(bars) == ds.num_classes
    heights = [b.get_height() for b in bars]
    assert heights == sorted(heights, reverse=True)
    by_count = sorted(ds.categories, key=lambda c: (-c["image_count"], c["id"]))
    assert [mcolors.to_hex(b.get_facecolor()) for b in bars] == [GROUP_COLOURS[c["frequency"]] for c in by_count]
    fig = plot_samples(ds, [0, 1, 2], ncols=2)
    drawn = fig.axes[0]
    assert len(drawn.images) == 2  # the image and the mask overlay
    assert len(drawn.patches) == len(ds[0][1]["boxes"])
    fig.savefig(tmp_path / "samples.png")

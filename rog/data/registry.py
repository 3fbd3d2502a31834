"""The datasets by name (params.yaml's dataset.name) and what the code asks of each: `DATASETS`.

    spec = dataset_spec(params["dataset"]["name"])
    if spec.rendered: ...     # instead of comparing the name
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """rendered: made by `rog dataset` from dataset.glyphs (the pipeline renders it into its own root;
    its training images number dataset.glyphs.num_train). Otherwise read where dataset.root says.
    glyphs: its categories are glyphs: look-alikes are defined from their shapes, and a mirrored image
    is not one of them (no horizontal flip).
    converted: its source files are converted once (cached) to an LVIS-like json by
    rog.data.openimages.split_files; otherwise dataset.root holds the json files."""

    rendered: bool = False
    glyphs: bool = False
    converted: bool = False


DATASETS: dict[str, DatasetSpec] = {
    "lt_glyphs": DatasetSpec(rendered=True, glyphs=True),
    "lvis": DatasetSpec(),
    "openimages": DatasetSpec(converted=True),
}


def dataset_spec(name: str | None) -> DatasetSpec:
    """The spec of dataset `name`; ValueError naming the valid names."""
    if name not in DATASETS:
        raise ValueError(f"dataset.name = {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]

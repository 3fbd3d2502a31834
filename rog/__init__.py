"""rog: a reproducible compendium for ROG / the GAP loss (ICCV 2023) on long-tailed detection."""

__version__ = "0.1.0"

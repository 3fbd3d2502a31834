"""Data: LT-Glyphs renderer, LVIS v1 dataset, category statistics, repeat-factor sampling."""

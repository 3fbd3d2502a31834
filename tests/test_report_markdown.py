"""The report's one Markdown-table writer (rog/report/markdown.py) and the column cap on every page."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rog.report import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_a_narrow_table():
    assert markdown.table(["a", "b"], [[1, "x"], ["", 2.5]]) == "| a | b |\n|---|---|\n| 1 | x |\n|  | 2.5 |\n"
    assert markdown.widths(markdown.table(["a", "b"], [])) == [2]


def test_a_wide_table_is_split_keeping_its_key_columns_and_groups():
    head = ["row", "runs"] + [f"m{i} {who}" for i in range(8) for who in ("ours", "paper")]   # 18 columns
    row = ["CE", "ce"] + [f"{i}{w}" for i in range(8) for w in "op"]
    text = markdown.table(head, [row], keys=2, group=2)
    parts = text.strip().split("\n\n")
    assert markdown.widths(text) == [10, 10]
    assert parts[0].splitlines()[0] == "| row | runs | " + " | ".join(head[2:10]) + " |"
    assert parts[1].splitlines()[2] == "| CE | ce | " + " | ".join(row[10:]) + " |"
    odd = markdown.table(head[:13], [row[:13]], keys=2, group=2)       # 11 value columns, pairs kept whole
    assert markdown.widths(odd) == [10, 5]


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="needs 2 cells"):
        markdown.table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="do not fit"):
        markdown.table([str(i) for i in range(12)], [], keys=10, group=2)


def test_only_the_helper_writes_table_separators():
    """No other module of rog/report writes a Markdown table by hand (its '|---|' separator line)."""
    found = [p.name for p in (ROOT / "rog/report").glob("*.py")
             if p.name != "markdown.py" and re.search(r'"\|-{3}\|', p.read_text())]
    assert found == []


def test_page_measures_count_prose_tables_and_figures_as_a_reader_sees_them():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "\n", "Two words."]},
        {"cell_type": "code", "source": [], "outputs": [
            {"output_type": "display_data", "data": {"text/markdown": "| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |"}},
            {"output_type": "display_data", "data": {"image/png": "iVBOR"}},
            {"output_type": "stream", "name": "stdout", "text": "not prose of the page"}]}]}
    assert markdown.notebook_text(notebook) == "# Title\n\nTwo words.\n\n| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |"
    assert markdown.page_measures(notebook) == {"words": 3, "widest": 3, "figures": 1}

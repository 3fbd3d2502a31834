"""Markdown tables: the one writer every page uses, and the column cap it enforces.

    table(["row", "runs", "AP ours", "AP paper"], [["CE", "ce", "31.2", "-"]])

gives a header line, a separator and one line per row ("| a | b |", "|---|---|"). A table wider than
MAX_COLUMNS is written as several tables of at most MAX_COLUMNS columns, each repeating the first `keys`
columns (the row's name) beside the next slice of the others, so that no page needs a horizontal scroll.
Cells are written as given (str()); a cell that could hold '|' is the caller's to escape.
"""
from __future__ import annotations

from typing import Sequence

MAX_COLUMNS = 10


def _lines(head: Sequence, rows: Sequence[Sequence]) -> list[str]:
    return (["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def table(head: Sequence, rows: Sequence[Sequence], keys: int = 1, max_columns: int = MAX_COLUMNS,
          group: int = 1) -> str:
    """The Markdown of a table (ends with a newline). Wider than `max_columns`: split into tables each holding
    the first `keys` columns and the next columns beside them, a multiple of `group` at a time (e.g. 2 to keep
    'ours' beside 'paper'), separated by a blank line."""
    if any(len(row) != len(head) for row in rows):
        raise ValueError(f"every row needs {len(head)} cells: {head}")
    if len(head) <= max_columns:
        return "\n".join(_lines(head, rows)) + "\n"
    width = (max_columns - keys) // group * group
    if width < 1:
        raise ValueError(f"{keys} key columns and groups of {group} do not fit in {max_columns} columns")
    parts = []
    for start in range(keys, len(head), width):
        cols = list(range(keys)) + list(range(start, min(start + width, len(head))))
        parts.append("\n".join(_lines([head[i] for i in cols], [[row[i] for i in cols] for row in rows])))
    return "\n\n".join(parts) + "\n"


def widths(text: str) -> list[int]:
    """The number of columns of each Markdown table in `text` (read from its separator lines)."""
    return [line.count("---|") for line in text.splitlines() if line.startswith("|---")]


def signed(x: float, digits: int = 1) -> str:
    """x with its sign and `digits` decimals; a value that rounds to zero is "+0.0", never "-0.0"."""
    rounded = round(float(x), digits)
    return f"{(rounded if rounded != 0 else 0.0):+.{digits}f}"


def digits_apart(difference: float, threshold: float, digits: int = 1, most: int = 3) -> int:
    """The decimals (from `digits`, at most `most`) at which |difference| and threshold print apart, so that a
    borderline verdict never reads "+5.1 within noise of 5.1"."""
    while digits < most and f"{abs(difference):.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    return digits


def table_heads(text: str) -> list[list[str]]:
    """The header cells of every Markdown table in `text`."""
    lines = text.splitlines()
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line, below in zip(lines, lines[1:]) if line.startswith("|") and below.startswith("|---")]


def prose_words(text: str) -> int:
    """Words of `text` outside Markdown tables, headings' hashes and image links."""
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("|") and not line.startswith("![")]
    return sum(1 for word in " ".join(kept).split() if any(ch.isalnum() for ch in word))


def notebook_text(notebook: dict) -> str:
    """What a reader sees as text of an executed notebook (its parsed .ipynb JSON): the markdown cells and the
    Markdown outputs, in order."""
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            parts.append("".join(cell["source"]))
        for output in cell.get("outputs", []):
            text = (output.get("data") or {}).get("text/markdown")
            if text:
                parts.append("".join(text) if isinstance(text, list) else text)
    return "\n\n".join(parts)


def page_measures(notebook: dict) -> dict:
    """{words: prose words, widest: the widest table's columns (0 without one), figures: image outputs} of a
    parsed notebook: the numbers the overview's caps are checked on (`rog report pages`)."""
    text = notebook_text(notebook)
    figures = sum(1 for cell in notebook["cells"] for output in cell.get("outputs", [])
                  if "image/png" in (output.get("data") or {}))
    return {"words": prose_words(text), "widest": max(widths(text), default=0), "figures": figures}

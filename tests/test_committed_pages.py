"""The committed narrative read as a reader gets it (results/notebooks, results/tables, README): the overview
is an abstract under MAX_WORDS words of prose, no table anywhere is wider than MAX_COLUMNS, and no page
speaks of how it was made (sittings, sessions, issues, "today's" parameters): that is provenance, kept in
the footers, or git's history."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rog.report import markdown, overview

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "results" / "notebooks").rglob("*.ipynb"))
HISTORY = re.compile(r"\b(sittings?|sessions?|issues? \d+|issue #?\d+|today's)\b", re.IGNORECASE)


def shown_markdown(path: Path) -> str:
    """What a reader sees as text of a notebook: its markdown cells and its Markdown outputs."""
    return markdown.notebook_text(json.loads(path.read_text()))


def test_the_committed_overview_is_an_abstract_under_the_word_cap():
    text = shown_markdown(ROOT / "results" / "notebooks" / "overview.ipynb")
    words = markdown.prose_words(text)
    assert 300 < words < overview.MAX_WORDS, f"{words} words of prose on the overview"
    assert "**The question.**" in text and "**Reproduced**" in text          # the question, the verdict lines
    assert "| claim | paper | pairs run | reproduced | within noise | opposite |" in text
    assert "## Does LT-Glyphs pose LVIS's problem?" in text                  # the fidelity table
    assert markdown.page_measures(json.loads((ROOT / "results/notebooks/overview.ipynb").read_text()))["figures"] >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "results" / "notebooks")))
def test_no_committed_table_is_wider_than_the_cap(path):
    widths = markdown.widths(shown_markdown(path))
    assert not widths or max(widths) <= markdown.MAX_COLUMNS, f"{path.name}: tables of {widths} columns"


def test_no_page_or_readme_line_speaks_of_how_it_was_made():
    found = []
    for path in [*NOTEBOOKS, *sorted((ROOT / "results" / "tables").glob("*.md")), ROOT / "README.md"]:
        text = shown_markdown(path) if path.suffix == ".ipynb" else path.read_text()
        found += [f"{path.relative_to(ROOT)}: ...{m.string[max(0, m.start() - 40):m.end() + 20]}..."
                  for m in HISTORY.finditer(text)]
    assert not found, "\n".join(found[:20])


def test_the_committed_readme_headline_is_what_the_report_code_writes_from_the_committed_results():
    """README's generated part (between the HEADLINE markers) equals rog.report.readme's from results/: a change
    of the report code or of prose.yaml that moves its wording must regenerate it (python -m rog.report.readme)."""
    from rog.pipeline.registry import read_params
    from rog.report import readme

    old, new = readme.update(ROOT / "README.md", readme.headline(read_params(ROOT / "params.yaml"), ROOT))
    assert old == new, "README.md's headline is stale: run python -m rog.report.readme"


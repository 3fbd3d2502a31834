"""rog.report.html on hand-made notebooks: titles, descriptions and image counts read from the notebook,
the pages and the index written (figures embedded, links relative), stale pages removed, bad input named;
then the same folder opened in headless Chromium (tests/html_browser.py), where a page with a broken
image must be caught. The HTML of the smoke pipeline's notebooks is opened in tests/test_pipeline_smoke.py.
"""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from html_browser import check_site, chromium
from rog.cli import main
from rog.report import html

ROOT = Path(__file__).resolve().parents[1]


def png_base64(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = png_base64(7, 5)


def write(path: Path, *cells) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def figure_cell(b64: str = PNG):
    return new_code_cell("plot()", outputs=[new_output("display_data", data={"image/png": b64, "text/plain": "<Figure>"})])


@pytest.fixture
def notebooks(tmp_path) -> Path:
    """overview (a figure, papermill parameters), table10 and table2 (no figure), run/a (no heading)."""
    src = tmp_path / "notebooks"
    write(src / "overview.ipynb",
          new_markdown_cell("Some preamble.\n\n# The *tiny* `overview`\n\nA [first](x.md) sentence, e.g. this. "
                            "Then a second one.\n\n## Details"),
          new_code_cell('# Parameters\nname = "tiny"\nroot = "out/a/b"\n', metadata={"tags": ["injected-parameters"]}),
          figure_cell(), figure_cell(png_base64(3, 9)))
    write(src / "table10.ipynb", new_markdown_cell("# Table 10\n\nThe tenth table:\n\n- a list"))
    write(src / "table2.ipynb", new_markdown_cell("## Table 2: ranking\n\nThe second table."))
    write(src / "run" / "a.ipynb", new_code_cell("1 + 1"), new_markdown_cell("no heading here"))
    write(src / ".ipynb_checkpoints" / "overview-checkpoint.ipynb", new_markdown_cell("# checkpoint"))
    return src


def test_pages_hold_the_notebooks_titles_descriptions_and_image_counts(notebooks):
    pages = html.find_pages(notebooks)
    assert [p.href for p in pages] == ["overview.html", "table2.html", "table10.html", "run/a.html"]
    overview, table2, table10, run = pages
    assert overview.title == "The tiny overview"
    assert overview.description == "A first sentence, e.g. this. (papermill: name=tiny)"
    assert (overview.images, table2.images, table10.images, run.images) == (2, 0, 0, 0)
    assert (table2.title, table2.description) == ("Table 2: ranking", "The second table.")
    assert table10.description == "The tenth table."
    assert (run.title, run.headed, run.description, run.section) == ("a", False, "", "run")
    assert overview.headed and table2.headed


def test_first_sentence_is_cut_at_a_word():
    text = "word " * 100
    cut = html.first_sentence(text, limit=23)
    assert cut == "word word word word ..."


def test_build_writes_self_contained_pages_and_an_index(notebooks, tmp_path):
    out = tmp_path / "html"
    pages = html.build(notebooks, out)
    index = (out / "index.html").read_text()
    hrefs = re.findall(r'<a href="([^"]+)"', index)
    assert hrefs == ["overview.html", "table2.html", "table10.html", "run/a.html"]
    assert "The tiny overview" in index and "A first sentence, e.g. this." in index
    overview = (out / "overview.html").read_text()
    assert f"data:image/png;base64,{PNG}" in overview and "<title>The tiny overview (overview)</title>" in overview
    assert 'href="index.html">All pages</a>' in overview
    assert 'href="../index.html">All pages</a>' in (out / "run" / "a.html").read_text()
    assert not (out / ".ipynb_checkpoints").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")) == \
        sorted(["index.html", *(p.href for p in pages)])


def test_a_rebuild_removes_pages_whose_notebook_is_gone_but_never_cleans_a_foreign_folder(notebooks, tmp_path):
    out = tmp_path / "html"
    html.build(notebooks, out)
    (notebooks / "table10.ipynb").unlink()
    html.build(notebooks, out)
    assert not (out / "table10.html").exists() and (out / "table2.html").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.html").write_text("<p>not ours</p>")
    html.build(notebooks, foreign)
    assert (foreign / "mine.html").read_text() == "<p>not ours</p>"


def test_bad_input_is_named(notebooks, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        html.build(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*\.ipynb below .*empty"):
        html.find_pages(tmp_path / "empty")
    (notebooks / "broken.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="broken.ipynb"):
        html.find_pages(notebooks)
    root = tmp_path / "project"
    (root / "results").mkdir(parents=True)
    (notebooks).rename(root / "results" / "notebooks")
    assert main(["report", "html", "--root", str(root), "--out", str(tmp_path / "out")]) == 2
    assert "broken.ipynb" in capsys.readouterr().err


def test_chromium_shows_every_page_and_catches_a_broken_image(notebooks, tmp_path):
    write(notebooks / "broken_image.ipynb", new_markdown_cell("# Broken\n\nAn image that is not there: ![x](nothing.png)"))
    out = tmp_path / "html"
    pages = html.build(notebooks, out)
    with chromium() as driver:
        problems = check_site(driver, out, pages)
    assert problems == ["broken_image.html: image not shown (naturalWidth 0): "
                        + (out / "nothing.png").resolve().as_uri()[:60]]


FIRST_SCREEN = """
const found = (text) => Array.from(document.querySelectorAll('p, li, strong'))
  .filter(e => e.textContent.includes(text)).map(e => e.getBoundingClientRect().bottom + window.scrollY);
return {height: window.innerHeight, width: window.innerWidth, question: found('The question.'),
        verdicts: ['Reproduced', 'Opposite', 'Unresolved'].map(found)};
"""


def test_the_committed_overviews_first_screen_shows_the_question_and_the_three_line_verdict(tmp_path):
    """results/notebooks/overview.ipynb as the HTML build renders it, at 1400 x 900 in headless Chromium: the
    question and every verdict line the page has end above the fold. The screenshot is kept beside the test's
    files (first_screen.png) for a person to look at."""
    source = tmp_path / "notebooks"
    source.mkdir()
    (source / "overview.ipynb").write_bytes((ROOT / "results" / "notebooks" / "overview.ipynb").read_bytes())
    html.build(source, tmp_path / "html")
    with chromium() as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",      # the viewport itself, no window chrome
                               {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        driver.get((tmp_path / "html" / "overview.html").resolve().as_uri())
        state = driver.execute_script(FIRST_SCREEN)
        driver.save_screenshot(str(tmp_path / "first_screen.png"))
    assert (state["width"], state["height"]) == (1400, 900), state
    assert state["question"] and min(state["question"]) <= state["height"], state
    lines = [min(bottoms) for bottoms in state["verdicts"] if bottoms]
    assert len(lines) >= 2 and max(lines) <= state["height"], state      # at least Reproduced and one more

"""The executed notebooks as static HTML, readable in any browser without Jupyter.

    pages = build("results/notebooks", "out/html")   # every *.ipynb below, subfolders included

Each notebook becomes one page (nbconvert's lab template) at the same relative path, `.html` for
`.ipynb`, with a link back to the index; figures are outputs' PNGs embedded as data URIs, so the folder
is self-contained and can be copied or zipped as it is (MathJax alone comes from its CDN, when online).
`index.html` lists every page with its title (the notebook's first markdown heading), a one-line
description (the first sentence after that heading) and its number of figures.
"""
from __future__ import annotations

import ast
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

GENERATOR = "rog report html"
# top-level pages in reading order; the rest follow by name (table2 before table10)
FIRST = ("overview", "dataset", "gap_loss")
SECTIONS = {"": "The paper: overview, data, tables and figures",
            "run": "Each run read: metrics, K sweep, frequency groups, losses, rare objects, detections, provenance",
            "experiment": "Experiments: one per registry entry (training and evaluation)",
            "posthoc": "Post-hoc evaluations of trained models"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
DESCRIPTION_CHARS = 200


@dataclass(frozen=True)
class Page:
    source: Path        # the notebook, relative to the source folder
    title: str          # its first markdown heading, markdown stripped (the file's stem if it has none)
    description: str    # the first sentence after that heading, plain text ("" if none)
    images: int         # image outputs in the notebook: the page shows as many <img>
    headed: bool = True  # the title is a heading of the notebook (else the file's stem)

    @property
    def href(self) -> str:
        """The page's path relative to the output folder, '/'-separated."""
        return self.source.with_suffix(".html").as_posix()

    @property
    def section(self) -> str:
        return self.source.parent.as_posix() if self.source.parent != Path(".") else ""


def plain(markdown: str) -> str:
    """Inline markdown as plain text: links and images to their text, emphasis and code marks dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|(?<!\w)_(?=\S)|(?<=\S)_(?!\w))", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    return " ".join(text.split())


def first_sentence(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """The first sentence of `text` (up to '.', '!' or '?' before a capital), cut to `limit` at a word."""
    match = re.search(r"[.!?](?=\s+[A-Z(*`\"])", text)
    sentence = text[:match.end()] if match else text
    if sentence.endswith(":"):  # a paragraph that introduces a list
        sentence = sentence[:-1] + "."
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return sentence


def title_and_description(notebook: nbformat.NotebookNode) -> tuple[str | None, str]:
    """The first markdown heading of `notebook` (None if it has none) and the first sentence of the
    paragraph after it."""
    title, paragraph = None, []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if title is None:
                heading = re.match(r"#{1,6}\s+(.*?)\s*#*$", stripped)
                if heading:
                    title = plain(heading.group(1))
                continue
            if stripped and not stripped.startswith(("#", "|", "```", "<", "$$", "- ", "* ", "> ")):
                paragraph.append(stripped)
            elif paragraph:
                break
        if paragraph:
            break
    return title, first_sentence(plain(" ".join(paragraph)))


def injected_parameters(notebook: nbformat.NotebookNode) -> str:
    """papermill's injected parameters with short scalar values, e.g. 'name=RUN, profile=smoke'
    (paths left out): what tells apart the pages of one parametrized notebook."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and "injected-parameters" in cell.metadata.get("tags", []):
            shown = []
            for line in cell.source.splitlines():
                match = re.match(r"(\w+)\s*=\s*(.+)$", line.strip())
                if not match:
                    continue
                try:
                    value = ast.literal_eval(match.group(2))
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, (str, int, float, bool)) and "/" not in str(value) and len(str(value)) <= 40:
                    shown.append(f"{match.group(1)}={value}")
            return ", ".join(shown)
    return ""


def image_count(notebook: nbformat.NotebookNode) -> int:
    return sum(1 for cell in notebook.cells for output in cell.get("outputs", [])
               if any(kind in output.get("data", {}) for kind in IMAGE_TYPES))


def order(path: Path) -> tuple:
    """Sort key: sections in SECTIONS' order, FIRST pages first, then names with numbers compared as numbers."""
    section = path.parent.as_posix() if path.parent != Path(".") else ""
    rank = list(SECTIONS).index(section) if section in SECTIONS else len(SECTIONS)
    first = FIRST.index(path.stem) if not section and path.stem in FIRST else len(FIRST)
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]
    return rank, section, first, natural


def find_pages(source: str | Path) -> list[Page]:
    """A Page for every executed notebook below `source` (checkpoint folders skipped), in index order."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"no folder of executed notebooks at {source}")
    paths = sorted((p.relative_to(source) for p in source.rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts), key=order)
    if not paths:
        raise FileNotFoundError(f"no *.ipynb below {source}")
    pages = []
    for rel in paths:
        try:
            notebook = nbformat.read(source / rel, as_version=4)
        except Exception as err:  # nbformat raises several kinds for a broken file
            raise ValueError(f"{source / rel}: not a readable notebook ({err})") from err
        title, description = title_and_description(notebook)
        parameters = injected_parameters(notebook)
        if parameters:
            description = f"{description} (papermill: {parameters})".lstrip()
        pages.append(Page(rel, title or rel.stem, description, image_count(notebook), headed=title is not None))
    return pages


def render_page(source: Path, page: Page, out: Path) -> None:
    """Write out/page.href: the notebook through nbconvert, a link to the index after <body>."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(source / page.source, as_version=4)
    exporter = HTMLExporter(template_name="lab")
    name = page.source.with_suffix("").as_posix()
    body, _ = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": f"{page.title} ({name})", "path": str(source / page.source.parent)}})
    index = os.path.relpath("index.html", page.source.parent.as_posix() or ".")
    nav = (f'<nav style="font:14px sans-serif;padding:8px 16px;border-bottom:1px solid #ddd">'
           f'<a style="color:#0645ad" href="{html.escape(Path(index).as_posix())}">All pages</a> &middot; {html.escape(name)}.ipynb</nav>')
    body, found = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)
    if not found:
        raise ValueError(f"nbconvert wrote no <body> for {source / page.source}")
    target = out / page.href
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")


def index_html(pages: list[Page], heading: str = "rog: the executed notebooks") -> str:
    """The index page: one table per section, a row per page (link, title, description, figures)."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"generator\" content=\"{GENERATOR}\">\n<title>{html.escape(heading)}</title>\n"
             "<style>body{font:15px/1.45 sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;width:100%}td,th{text-align:left;vertical-align:top;padding:4px 8px;"
             "border-bottom:1px solid #ddd}td.n{text-align:right;white-space:nowrap}</style>\n</head>\n<body>\n"
             f"<h1>{html.escape(heading)}</h1>\n<p>Static copies of the notebooks that the pipeline executed "
             "(results/notebooks), figures included. To re-run or change them, open the notebooks in JupyterLab "
             "(<code>make lab</code>).</p>\n"]
    sections: dict[str, list[Page]] = {}
    for page in pages:
        sections.setdefault(page.section, []).append(page)
    for section, members in sections.items():
        parts.append(f"<h2>{html.escape(SECTIONS.get(section, section))}</h2>\n<table>\n"
                     "<tr><th>Page</th><th>Title</th><th>What it shows</th><th>Figures</th></tr>\n")
        for page in members:
            name = page.source.with_suffix("").as_posix()
            parts.append(f"<tr><td><a href=\"{html.escape(page.href)}\">{html.escape(name)}</a></td>"
                         f"<td>{html.escape(page.title)}</td><td>{html.escape(page.description)}</td>"
                         f"<td class=\"n\">{page.images}</td></tr>\n")
        parts.append("</table>\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def build(source: str | Path = "results/notebooks", out: str | Path = "out/html") -> list[Page]:
    """Render every notebook below `source` into `out`, write out/index.html; return the pages.

    HTML files left in `out` by an earlier build (its index.html names this generator) and no longer
    matching a notebook are removed; a folder not made by this function is written into, never cleaned.
    """
    source, out = Path(source), Path(out)
    pages = find_pages(source)
    index = out / "index.html"
    if index.is_file() and f'content="{GENERATOR}"' in index.read_text(encoding="utf-8", errors="replace"):
        wanted = {out / page.href for page in pages} | {index}
        for stale in out.rglob("*.html"):
            if stale not in wanted:
                stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        render_page(source, page, out)
    index.write_text(index_html(pages), encoding="utf-8")
    return pages

"""Build the raw-input snapshot in data/ once: corpus text and font files with their licences.

This runs once, by hand, when the snapshot is (re)made; the pipeline never calls it. pydoc's topic
text changes with every Python patch release and matplotlib's fonts with its releases, so the
renderer only ever reads the frozen copy, which `data.dvc` tracks and the in-repo DVC remote holds:

    python -m rog.data.snapshot data      # then: dvc add data && dvc push

Layout written::

    data/corpus/pydoc_topics.txt   one line of ASCII text (whitespace runs folded to one space)
    data/corpus/SOURCE.md          where it came from (Python version) and its licence
    data/fonts/*.ttf               DejaVu Sans/Sans Mono/Serif and STIX General, 4 styles each
    data/fonts/LICENSE_DEJAVU, LICENSE_STIX
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CORPUS_FILE = "corpus/pydoc_topics.txt"
FONT_DIR = "fonts"

# The Display variants of DejaVu have no ASCII glyphs (cpu-facts.md), so they are left out.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
)
FONT_LICENCES = ("LICENSE_DEJAVU", "LICENSE_STIX")


def fold_text(text: str) -> str:
    """Drop non-ASCII and non-printable characters and the reStructuredText rules (runs of 4 or more
    of the same punctuation character, e.g. '*****' or '====' under titles); fold every whitespace
    run to one space."""
    ascii_only = "".join(ch for ch in text if ch.isascii() and (ch.isprintable() or ch.isspace()))
    no_rules = re.sub(r"([^\w\s])\1{3,}", " ", ascii_only)
    return re.sub(r"\s+", " ", no_rules).strip()


def extract_corpus() -> str:
    """pydoc's documentation topics, in sorted topic order, folded by `fold_text`."""
    from pydoc_data.topics import topics

    return fold_text(" ".join(topics[name] for name in sorted(topics)))


def ensure_snapshot(snapshot: str | Path = "data") -> Path:
    """Return `snapshot`; if its corpus is missing and a `<snapshot>.dvc` file sits next to it (a fresh
    clone), `dvc pull` it first, from the DVC remote committed in the repo (no network needed)."""
    snapshot = Path(snapshot)
    if (snapshot / CORPUS_FILE).is_file():
        return snapshot
    dvc_file = snapshot.parent / f"{snapshot.name}.dvc"
    if not dvc_file.is_file():
        raise FileNotFoundError(f"{snapshot / CORPUS_FILE}: corpus missing and no {dvc_file} to pull it with")
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    done = subprocess.run([sys.executable, "-m", "dvc", "pull", "-q", dvc_file.name], cwd=snapshot.parent or ".",
                          env=env, capture_output=True, text=True)
    if done.returncode != 0 or not (snapshot / CORPUS_FILE).is_file():
        raise FileNotFoundError(f"{snapshot}: `dvc pull {dvc_file.name}` failed:\n{done.stdout}{done.stderr}")
    return snapshot


def build_snapshot(dest: str | Path) -> Path:
    """Write corpus and fonts into `dest` (created if missing). Returns `dest`."""
    import matplotlib

    dest = Path(dest)
    (dest / "corpus").mkdir(parents=True, exist_ok=True)
    (dest / FONT_DIR).mkdir(parents=True, exist_ok=True)
    text = extract_corpus()
    (dest / CORPUS_FILE).write_text(text + "\n", encoding="ascii")
    version = ".".join(map(str, sys.version_info[:3]))
    (dest / "corpus" / "SOURCE.md").write_text(
        "# pydoc_topics.txt\n\n"
        f"Extracted once from `pydoc_data.topics` of CPython {version} by `rog/data/snapshot.py`:\n"
        "the topics joined in sorted key order, characters outside printable ASCII dropped,\n"
        f"runs of 4+ identical punctuation characters (reST rules) dropped,\n"
        f"every whitespace run folded to one space. {len(text):,} characters.\n\n"
        "The text is part of the Python documentation, (c) Python Software Foundation,\n"
        "distributed under the PSF License Agreement (https://docs.python.org/3/license.html).\n",
        encoding="ascii",
    )
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in FONT_FILES + FONT_LICENCES:
        shutil.copyfile(source / name, dest / FONT_DIR / name)
    (dest / FONT_DIR / "SOURCE.md").write_text(
        f"# Fonts\n\nCopied from matplotlib {matplotlib.__version__} (`mpl-data/fonts/ttf`).\n"
        "DejaVu fonts: see LICENSE_DEJAVU (Bitstream Vera licence and public-domain changes).\n"
        "STIX fonts: see LICENSE_STIX (STIX Font License / SIL OFL).\n",
        encoding="ascii",
    )
    return dest


if __name__ == "__main__":
    print(build_snapshot(sys.argv[1] if len(sys.argv) > 1 else "data"))

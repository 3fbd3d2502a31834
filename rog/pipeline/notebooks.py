"""Executed notebooks kept in git: strip what changes on every run, keep the outputs.

`python -m rog.pipeline.notebooks FILE...` rewrites each papermill-executed notebook without
metadata.papermill, cells' metadata.papermill / metadata.execution, with cell ids renumbered
"0", "1", ... (papermill gives the injected-parameters cell a new random id each run), so two runs
with equal outputs are byte-identical (what nbstripout --keep-output --extra-keys does).

`project_root()` finds the folder holding dvc.yaml from the current directory upwards: papermill runs
kernels in the repo root (--cwd .), nbval in the notebook's own folder; notebooks chdir there first.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

NOTEBOOK_KEYS = ("papermill",)
CELL_KEYS = ("papermill", "execution", "collapsed", "scrolled")


def strip(notebook: dict) -> dict:
    """Return `notebook` (nbformat 4 JSON dict) without volatile metadata; ids renumbered."""
    nb = json.loads(json.dumps(notebook))
    for key in NOTEBOOK_KEYS:
        nb.get("metadata", {}).pop(key, None)
    for i, cell in enumerate(nb.get("cells", [])):
        for key in CELL_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if "id" in cell:
            cell["id"] = str(i)
    return nb


def strip_file(path: str | Path) -> None:
    path = Path(path)
    nb = strip(json.loads(path.read_text()))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the cwd) that holds dvc.yaml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no dvc.yaml in {here} or above: run the notebook inside the rog repository")


def enter_project_root() -> Path:
    """chdir to project_root() and return it (the first line of every notebook)."""
    root = project_root()
    os.chdir(root)
    return root


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m rog.pipeline.notebooks NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for path in paths:
        strip_file(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""nbval on the committed narrative: the overview, table, figure and sweep notebooks of results/notebooks
(and the GAP-loss explainer, which is cheap) re-executed against the committed results/, outputs compared
strictly (volatile cells carry `# NBVAL_IGNORE_OUTPUT`). Nothing is trained: these notebooks only read
results/experiments. The table notebooks also write results/tables/*.md; those must equal the committed
ones byte for byte.

Runs in a copy of dvc.yaml, params.yaml and results/ (the notebooks find the project root by dvc.yaml
and write into results/), with this checkout's `rog` first on the kernel's path. A change to the report
code that changes a committed table fails here until results/notebooks and results/tables are
regenerated (`dvc repro` of the report stages). About 30 s on 2 cores.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("overview", "table1", "table2", "table3", "table4", "table5", "table6", "sweeps", "figure4",
             "figure5", "gap_loss", "lookalike")


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    copy = tmp_path_factory.mktemp("narrative") / "rog"
    copy.mkdir()
    # dvc.lock too: the provenance footer reads the code each run's stage recorded there (same run code?)
    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "results", copy / "results")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # MPLBACKEND drops inline figures
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    paths = [f"results/notebooks/{name}.ipynb" for name in NOTEBOOKS]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
                             "-p", "no:cacheprovider", "--nbval-cell-timeout", "600", *paths],
                            cwd=copy, env=env, capture_output=True, text=True)
    print(f"\nnbval on the committed narrative: {time.perf_counter() - start:.0f} s")
    return copy, result


def test_committed_notebooks_reproduce_their_outputs(executed):
    _, result = executed
    assert result.returncode == 0, (
        "re-executing results/notebooks against the committed results/ changed their outputs; regenerate "
        "them (dvc repro of the report stages) if the change is intended:\n" + result.stdout[-8000:]
        + result.stderr[-2000:])


def test_committed_tables_are_what_the_notebooks_write(executed):
    copy, _ = executed
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "results" / "tables").glob("*.md"))
    assert committed
    differ = [str(p) for p in committed if (copy / p).read_bytes() != (ROOT / p).read_bytes()]
    assert not differ, f"the report code now writes other tables than the committed ones: {differ}"

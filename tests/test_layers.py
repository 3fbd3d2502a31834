"""The package is strictly layered: every import (inside functions too, read with ast by
rog.pipeline.imports) points to the same layer or one below, and no two modules import each other,
directly or through others. The order (bottom first):

    rog, rog.paths, rog.schema, rog.config, rog.provenance   the params and the pipeline's layout
    rog.losses < rog.data < rog.models < rog.evaluation < rog.engine   the ML core
    rog.pipeline                                             the registry, dvc.yaml, the stages
    rog.report                                               results/ into verdicts, tables, pages
    rog.commands < rog.cli, rog.__main__                     the command line

The report reads results/, the registry and the bottom layer; it does not import the training machinery
(rog.engine, rog.models).
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from rog.pipeline import imports

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    ("rog", "rog.paths", "rog.schema", "rog.config", "rog.provenance"),
    ("rog.losses",),
    ("rog.data",),
    ("rog.models",),
    ("rog.evaluation",),
    ("rog.engine",),
    ("rog.pipeline",),
    ("rog.report",),
    ("rog.commands",),
    ("rog.cli", "rog.__main__"),
)
# packages a layer may not import although they lie below it
FORBIDDEN = {"rog.report": ("rog.engine", "rog.models")}
# edges left from the forbidden ones (none: freshness is decided by the pipeline's freshness stage)
PENDING: set[tuple[str, str]] = set()
DYNAMIC = ("import_module", "__import__")


def layer(module: str) -> int:
    """The index in LAYERS of the longest prefix of `module` (a KeyError for a module outside them)."""
    best = None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[1]):
                best = (i, len(name))
    if best is None:
        raise KeyError(f"{module}: in no layer of tests/test_layers.py's LAYERS")
    return best[0]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(root: Path) -> list[str]:
    """One line per import that points upward or into a forbidden package, 'A -> B (line N)'."""
    out = []
    for module, targets in imports.import_graph(root).items():
        for target, line in targets.items():
            if module == "rog":
                continue
            upward = layer(target) > layer(module)
            forbidden = any(_within(module, pkg) and any(_within(target, f) for f in banned)
                            for pkg, banned in FORBIDDEN.items()) and (module, target) not in PENDING
            if upward or forbidden:
                out.append(f"{module} -> {target} (line {line}){' upward' if upward else ' forbidden'}")
    return sorted(out)


def dynamic_imports(root: Path) -> list[str]:
    """Calls of importlib.import_module / __import__ below the command line: imports the graph cannot see."""
    out = []
    for module, path in imports.module_files(root).items():
        if layer(module) >= layer("rog.cli"):
            continue
        for node in ast.walk(ast.parse((root / path).read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in DYNAMIC:
                    out.append(f"{module} (line {node.lineno})")
    return out


def test_every_module_is_in_a_layer():
    for module in imports.module_files(ROOT):
        layer(module)


def test_no_import_points_upward():
    assert violations(ROOT) == []


def test_no_import_cycles():
    assert imports.cycles(ROOT) == []


def test_no_dynamic_imports_below_the_command_line():
    assert dynamic_imports(ROOT) == []


def test_the_pending_edge_still_exists():
    """PENDING lists only edges that are really there (else it is stale and must shrink)."""
    graph = imports.import_graph(ROOT)
    assert all(target in graph[module] for module, target in PENDING)


@pytest.fixture
def broken_copy(tmp_path):
    """A copy of the package to break on purpose."""
    shutil.copytree(ROOT / "rog", tmp_path / "rog", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + "\n\n" + line + "\n")


def test_an_upward_import_inside_a_function_is_caught(broken_copy):
    _append(broken_copy / "rog/losses/gap.py", "def _f():\n    from rog.report import tables  # noqa")
    assert violations(ROOT) == []
    found = violations(broken_copy)
    assert found == [f"rog.losses.gap -> {target} (line {line}) upward" for target in ("rog.report", "rog.report.tables")
                     for line in [len((broken_copy / "rog/losses/gap.py").read_text().splitlines())]]


def test_a_cycle_and_a_forbidden_import_are_caught(broken_copy):
    _append(broken_copy / "rog/report/results.py", "from rog.report import tables  # noqa")
    _append(broken_copy / "rog/report/tables.py", "from rog.engine import trainer  # noqa")
    assert any("rog.report.results" in c and "rog.report.tables" in c for c in imports.cycles(broken_copy))
    assert any(v.startswith("rog.report.tables -> rog.engine.trainer") and v.endswith("forbidden")
               for v in violations(broken_copy))


def test_a_dynamic_import_is_caught(broken_copy):
    _append(broken_copy / "rog/schema.py", "import importlib\n_m = importlib.import_module('rog.losses')")
    assert dynamic_imports(broken_copy) == ["rog.schema (line " + str(
        len((broken_copy / "rog/schema.py").read_text().splitlines())) + ")"]


def test_the_report_names_no_experiment_and_no_table_row():
    """rog/report reads which runs and rows a page shows from params.yaml (tables, figures, questions) and
    paper_numbers.yaml: no string constant of its code is a run of the registry or a TABLE row key."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    names = set(params.get("experiments") or {}) | set(params.get("posthoc") or {})
    for entries in (params.get("profile_experiments") or {}).values():
        names |= set(entries or {})
    rows = {row["paper"] for section in ("tables", "figures") for spec in (params.get(section) or {}).values()
            for row in spec.get("rows") or [] if "/" in row["paper"]}
    found = []
    for path in sorted((ROOT / "rog/report").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names | rows:
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert found == []

"""rog's import graph, read with `ast` (nothing is imported), and what a pipeline stage runs.

Two checks rest on it: the package's layering (tests/test_layers.py: no import upward, no cycle) and the
stages' code dependencies (rog.pipeline.dvcyaml: a stage's `deps` are the files its commands import).

An edge A -> B is any `import`/`from ... import` of B in A's file, at any depth (an import inside a
function runs too, only later), and a launch: a module that starts `python -m rog CMD` in a subprocess
names the command modules it starts in a module-level tuple `LAUNCHES` (rog.pipeline.stage). Importing
`rog.a.b` also runs `rog/__init__.py` and `rog/a/__init__.py`: a closure includes them. Data files that
a module reads beside itself (a string constant naming a file of its folder, e.g. 'paper_numbers.yaml')
count as its dependencies too.

A stage's commands (dvc.yaml `cmd`) start code three ways: `papermill notebooks/X.ipynb` (the imports of
its code cells), `python -m rog CMD` (rog.cli, which imports only the command it runs), `python -m
rog.x.y` (that module).
"""
from __future__ import annotations

import ast
import json
import re
import shlex
from functools import lru_cache
from pathlib import Path

PACKAGE = "rog"
DATA_NAME = re.compile(r"[\w.-]+\.(yaml|yml|json|csv|txt)")
LAUNCHES = "LAUNCHES"


def module_files(root: str | Path = ".") -> dict[str, Path]:
    """{dotted module name: file relative to root} of every .py file of the package ('rog.config', 'rog.report')."""
    root = Path(root)
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path.relative_to(root)
    return out


def _known(name: str, modules) -> str | None:
    """`name` or its longest prefix that is a module of the package (from rog.x import f -> rog.x)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(tree: ast.AST, module: str, is_package: bool, launches: bool = True) -> list[tuple[str, int]]:
    """(dotted name, line) of every import in `tree` (absolute; relative ones resolved against `module`),
    with `from X import a` giving both X and X.a (a may be a submodule), plus (`launches`) the LAUNCHES
    tuple's names."""
    out = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = base[:len(base) - node.level + 1] if node.level else []
            name = ".".join(prefix + ([node.module] if node.module else []))
            out.append((name, node.lineno))
            out += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    for node in getattr(tree, "body", []) if launches else []:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == LAUNCHES for t in node.targets)
                and isinstance(node.value, (ast.Tuple, ast.List))):
            out += [(elt.value, node.lineno) for elt in node.value.elts
                    if isinstance(elt, ast.Constant) and isinstance(elt.value, str)]
    return out


def _edges(root: Path, launches: bool) -> dict[str, dict[str, int]]:
    modules = module_files(root)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        tree = ast.parse((root / path).read_text(), str(path))
        targets: dict[str, int] = {}
        for imported, line in imported_names(tree, name, path.name == "__init__.py", launches):
            target = _known(imported, modules) if imported.split(".")[0] == PACKAGE else None
            if target and target != name:
                targets.setdefault(target, line)
        graph[name] = targets
    return graph


@lru_cache(maxsize=8)
def _graph_cached(root: str, stamp: tuple, launches: bool) -> dict[str, dict[str, int]]:
    return _edges(Path(root), launches)


def import_graph(root: str | Path = ".", launches: bool = False) -> dict[str, dict[str, int]]:
    """{module: {imported rog module: first line}} for every module of the package; with `launches`, also
    the command modules a module starts in a subprocess (its LAUNCHES: what runs, though not an import)."""
    root = Path(root).resolve()
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted((root / PACKAGE).rglob("*.py")))
    return _graph_cached(str(root), stamp, launches)


def parents(module: str) -> list[str]:
    """The packages whose __init__ importing `module` runs: rog.a.b -> [rog, rog.a]."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(roots, root: str | Path = ".") -> set[str]:
    """Every module that running `roots` may import: the roots, what they import, transitively, and the
    packages on the way, and the commands they launch."""
    graph = import_graph(root, launches=True)
    seen: set[str] = set()
    todo = [m for m in roots if m in graph]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += [m for m in [*graph[module], *parents(module)] if m in graph and m not in seen]
    return seen


def data_files(module: str, root: str | Path = ".") -> set[Path]:
    """Files other than Python beside `module` that its code names in a string constant (e.g. a YAML it reads)."""
    root = Path(root)
    path = module_files(root)[module]
    folder = (root / path).parent
    names = {node.value for node in ast.walk(ast.parse((root / path).read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return {(folder / n).relative_to(root) for n in names if DATA_NAME.fullmatch(n) and (folder / n).is_file()}


def cycles(root: str | Path = ".") -> list[list[str]]:
    """The import cycles: each strongly connected set of two or more modules, sorted (Tarjan's algorithm)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:  # the package is a few hundred modules: recursion depth is no concern
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return sorted(found)


def notebook_modules(path: str | Path) -> set[str]:
    """The rog modules a notebook's code cells import (IPython magics and shell lines skipped)."""
    cells = json.loads(Path(path).read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return {name for name, _ in imported_names(ast.parse(code), "__main__", False, launches=False)
            if name.split(".")[0] == PACKAGE}


def command_roots(cmd: str, root: str | Path = ".") -> tuple[set[str], set[str]]:
    """(rog modules, notebook files) that one shell command of a stage starts."""
    modules: set[str] = set()
    notebooks: set[str] = set()
    known = module_files(root)
    words = shlex.split(cmd)
    for i, word in enumerate(words):
        if word == "papermill" and i + 1 < len(words):
            notebooks.add(words[i + 1])
            modules |= {m for m in (_known(n, known) for n in notebook_modules(Path(root) / words[i + 1])) if m}
        if word == "-m" and i + 1 < len(words) and words[i + 1].split(".")[0] == PACKAGE:
            target = words[i + 1]
            if target == PACKAGE:  # python -m rog CMD: rog.__main__ -> rog.cli -> rog.commands.CMD
                modules |= {f"{PACKAGE}.__main__", f"{PACKAGE}.cli"}
                if i + 2 < len(words) and f"{PACKAGE}.commands.{words[i + 2]}" in known:
                    modules.add(f"{PACKAGE}.commands.{words[i + 2]}")
            elif target in known:
                modules.add(target)
    return modules, notebooks


def stage_code(cmds, root: str | Path = ".") -> list[str]:
    """A stage's code dependencies, from its commands: its notebooks, and every file of the package that
    they may import or read (`closure`, `data_files`), as paths relative to root, a whole folder where
    the stage uses every file of it. Sorted."""
    root = Path(root)
    modules: set[str] = set()
    notebooks: set[str] = set()
    for cmd in [cmds] if isinstance(cmds, str) else cmds:
        found, books = command_roots(cmd, root)
        modules |= found
        notebooks |= books
    used = closure(modules, root)
    files = {module_files(root)[m] for m in used}
    for module in used:
        files |= data_files(module, root)
    return sorted(notebooks) + compress(files, root)


def _package_files(folder: Path, root: Path) -> set[Path]:
    """What DVC hashes in a folder of the package (the .py and data files; .dvcignore drops __pycache__)."""
    return {p.relative_to(root) for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def compress(files: set[Path], root: Path) -> list[str]:
    """`files` as paths, a folder standing for its files where all of them (subfolders included) are in
    `files`; the package's root folder is never used (it would hold everything)."""
    chosen: set[Path] = set()
    folders = sorted({f.parent for f in files}, key=lambda p: len(p.parts))
    for folder in folders:
        if folder == Path(PACKAGE) or any(folder.is_relative_to(c) for c in chosen):
            continue
        if _package_files(folder, root) <= files:
            chosen.add(folder)
    rest = {f for f in files if not any(f.is_relative_to(c) for c in chosen)}
    return sorted(str(p) for p in chosen | rest)


def covered(path: str, deps) -> bool:
    """Whether `path` is one of `deps` or inside one of them (a folder)."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


__all__ = ["import_graph", "closure", "cycles", "stage_code", "command_roots", "module_files", "covered"]

"""From which code and environment results/ came: the runs' metrics.json "provenance" (rog.provenance),
grouped, with a verdict that flags a results/ made by several commits or environments, and the commits
that trained the runs (metrics.json "train_provenance": a run's training may predate its evaluation).

A group is one commit (and dirty flag), lock digest, Python/torch/torchvision/numpy versions, device,
threads, processes and machine; wall seconds do not split groups. Runs whose metrics.json predates
provenance form one group, "unknown (made before provenance was recorded)".
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from rog.pipeline.registry import metrics_path

from rog.report import markdown as md
from rog.report.results import load_metrics

UNKNOWN = "unknown (made before provenance was recorded)"
# the fields that say what made a result (rog.provenance), in table order
KEYS = ("commit", "dirty", "lock_sha256", "lock_mismatches", "python", "torch", "torchvision", "numpy",
        "device", "device_name", "torch_threads", "processes", "machine")


def environment(found: dict | None) -> tuple | None:
    """The hashable identity of one run's provenance; None when the run has none."""
    if not found:
        return None
    return tuple((key, repr(found.get(key))) for key in KEYS)


def recorded_code(runs: list[str], root: str | Path = ".") -> dict[str, dict[str, str]] | None:
    """{run: {path: md5}}: the code each run's stage (experiment@RUN or posthoc@RUN) depended on when it
    ran, as dvc.lock records it (the pipeline's folders under out/ and results/ left out); None without a
    dvc.lock, or when it does not record every run or records another metrics.json than results/ holds
    (dvc.lock then describes other runs than these)."""
    path = Path(root) / "dvc.lock"
    if not path.is_file():
        return None
    stages = yaml.safe_load(path.read_text()).get("stages") or {}
    out = {}
    for run in runs:
        entry = stages.get(f"experiment@{run}") or stages.get(f"posthoc@{run}")
        metrics = Path(root) / metrics_path(run)
        recorded = [o.get("md5") for o in (entry or {}).get("outs") or [] if o["path"] == metrics_path(run).as_posix()]
        if not recorded or not metrics.is_file() or hashlib.md5(metrics.read_bytes()).hexdigest() != recorded[0]:
            return None
        out[run] = {d["path"]: d.get("md5") for d in entry.get("deps") or []
                    if not d["path"].startswith(("out/", "results/"))}
    return out


def same_run_code(runs: list[str], root: str | Path = ".") -> bool | None:
    """Whether `runs` were made by the same code, whatever commits they name: every code path their stages
    depended on has one hash across them in dvc.lock (recorded_code). None when dvc.lock cannot tell."""
    recorded = recorded_code(runs, root)
    if not recorded:
        return None
    hashes: dict[str, set] = {}
    for deps in recorded.values():
        for path, md5 in deps.items():
            hashes.setdefault(path, set()).add(md5)
    return all(len(found) == 1 for found in hashes.values())


def groups(runs: list[str], root: str | Path = ".") -> list[dict]:
    """[{runs: [names], provenance: dict or None}] for the runs that have a metrics.json, in order of
    first appearance; runs without results are left out."""
    out: dict = {}
    for run in runs:
        metrics = load_metrics(run, root)
        if metrics is None:
            continue
        found = metrics.get("provenance")
        entry = out.setdefault(environment(found), {"runs": [], "provenance": found})
        entry["runs"].append(run)
    return list(out.values())


def _short(value, n: int = 12) -> str:
    return "–" if value is None else str(value)[:n]


def dirty_note(found: dict) -> str:
    """" (dirty: the changed files)" for a run made from a working tree that differed from its commit."""
    if not found.get("dirty"):
        return ""
    files = found.get("dirty_files") or []
    return f" (dirty: {', '.join(files)})" if files else " (dirty)"


def _row(group: dict) -> list[str]:
    names = group["runs"]
    runs = f"{len(names)}: " + ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    p = group["provenance"]
    if p is None:
        return [runs, UNKNOWN] + ["–"] * 5
    commit = _short(p.get("commit")) + dirty_note(p)
    lock = _short(p.get("lock_sha256"))
    if p.get("lock_mismatches"):
        lock += f" ({p['lock_mismatches']} packages differ)"
    versions = f"python {p.get('python')}, torch {p.get('torch')}, torchvision {p.get('torchvision')}, " \
               f"numpy {p.get('numpy')}"
    device = f"{p.get('device')} ({p.get('device_name')})"
    machine = p.get("machine") or {}
    return [runs, commit, lock, versions, device, f"{p.get('torch_threads')} × {p.get('processes')}",
            f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}"]


def verdict(found: list[dict], root: str | Path = ".") -> str:
    """One line: all runs from one commit and environment; from several commits with the same run code
    (same_run_code: dvc.lock below `root`), naming the environment fields that differ; or a
    warning that names how many groups and which environment fields differ."""
    total = sum(len(g["runs"]) for g in found)
    known = [g["provenance"] for g in found if g["provenance"] is not None]
    if not found:
        return "No run has results yet."
    if not known:
        return f"All {total} runs: {UNKNOWN}."
    commits = sorted({p.get("commit") for p in known if p.get("commit")})
    differing = [k for k in KEYS[2:] if len({repr(p.get(k)) for p in known}) > 1]
    if len(found) == 1:
        text = f"All {total} runs were made by one commit ({_short(known[0].get('commit'))}) in one environment."
    elif (len(commits) > 1 and len(known) == len(found) and not any(p.get("dirty") for p in known)
          and same_run_code([run for g in found for run in g["runs"]], root)):
        text = (f"All {total} runs were made by {len(commits)} commits ({', '.join(_short(c) for c in commits)}) "
                "with the same run code (dvc.lock records one hash for each code file their stages depend on)"
                + (f"; their environments differ in {', '.join(differing)}: compare numbers across them with care."
                   if differing else ", in one environment."))
    else:
        unknown = total - sum(len(g["runs"]) for g in found if g["provenance"] is not None)
        text = (f"**Warning: results/ was made by {len(found)} different commits or environments** "
                f"({len(commits)} commit(s) recorded" + (f"; {unknown} of {total} runs {UNKNOWN}" if unknown else "")
                + (f"; environments differ in {', '.join(differing)}" if differing else "")
                + "): compare numbers across them with care.")
    if any(p.get("dirty") for p in known):
        text += " Some runs were made from a working tree that differed from its commit (dirty; the table names the files)."
    if any(p.get("lock_mismatches") for p in known):
        text += " Some runs were made in an environment that differed from requirements.lock."
    return text


def _trained(runs: list[str], root: str | Path) -> dict[str, dict]:
    """{run: its train_provenance} of the runs that record one."""
    found = {r: (load_metrics(r, root) or {}).get("train_provenance") for r in runs}
    return {r: p for r, p in found.items() if p}


def _same_training_code(trained: dict[str, dict], root: str | Path) -> bool:
    """Several commits trained these runs, and dvc.lock shows their run code is the same (same_run_code)."""
    return len({p.get("commit") for p in trained.values()}) > 1 and bool(same_run_code(list(trained), root))


def training_commits(runs: list[str], root: str | Path = ".") -> str:
    """One line: the commits that trained the runs (train_provenance), with run counts, most runs first,
    and whether their run code is the same (same_run_code); "" when no run records its training's
    provenance."""
    trained = _trained(runs, root)
    if not trained:
        return ""
    counts: dict[str, int] = {}
    for p in trained.values():
        key = _short(p.get("commit")) + dirty_note(p)
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ("Trained at " + ", ".join(f"{commit} ({n} run{'s' if n > 1 else ''})" for commit, n in ordered)
            + (", with the same run code" if _same_training_code(trained, root) else "") + ".")


def training_code(runs: list[str], root: str | Path = ".") -> str:
    """The commits that trained `runs`, short, and whether their run code is identical, e.g. "9922343,
    f828abe, identical between them"; "" when no run records its training's provenance."""
    trained = _trained(runs, root)
    commits = sorted({str(p.get("commit")) for p in trained.values() if p.get("commit")})
    return ", ".join(c[:7] for c in commits) + (", identical between them" if _same_training_code(trained, root) else "")


def summary(runs: list[str], root: str | Path = ".") -> str:
    """The verdict and the training commits in one line (the README's state, the table's caption)."""
    trained = training_commits(runs, root)
    return verdict(groups(runs, root), root) + (" " + trained if trained else "")


def markdown(runs: list[str], root: str | Path = ".") -> str:
    """The verdict and the training commits, then one table row per group: runs, the commit that evaluated
    them (metrics.json "provenance"; the line above names the training's), lock digest, versions, device,
    threads × processes, machine."""
    head = ["runs", "evaluated at", "lock (sha256)", "versions", "device", "threads × processes", "machine"]
    return (summary(runs, root) + "\n\n"
            + md.table(head, [[cell.replace("|", "/") for cell in _row(g)] for g in groups(runs, root)]))

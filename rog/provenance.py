"""What produced a result: code commit, locked environment, runtime and machine, as one JSON-able dict.

`provenance()` is stored under "provenance" in a run's run.json (rog.engine.rundir) and in every
metrics.json of `rog evaluate` (rog.engine.inference), so that a number names the code and environment
it came from. The machine is described without its hostname (CPU count and model, platform).

The commit is that of the checkout holding the imported `rog` package; "dirty" says whether tracked
files other than the pipeline's outputs (results/, dvc.lock, which a running `dvc repro` rewrites)
differ from it, or untracked files that git does not ignore are present. Fields that cannot be known
(no git, not a checkout, no lock file) are None.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements.lock"
# written by the pipeline while it runs: their changes are results, not changed code
OUTPUTS = ("results", "dvc.lock")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path = ROOT) -> dict:
    """{commit: 40 hex digits or None, dirty: bool or None, dirty_files: up to 20 changed paths}."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "dirty_files": []}
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".",
                  *(f":(exclude){p}" for p in OUTPUTS))
    changed = sorted(line[3:] for line in (status or "").splitlines() if line.strip())
    return {"commit": commit.strip(), "dirty": None if status is None else bool(changed),
            "dirty_files": changed[:20]}


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (flufl.lock -> flufl-lock)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(path: str | os.PathLike) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line of a pip-compile lock file.

    ValueError naming the file and line for a requirement that is not an exact pin, or a package pinned twice."""
    path = Path(path)
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = PIN.match(line)
        if match:
            name = canonical_name(match[1])
            if name in pins:
                raise ValueError(f"{path}:{number}: {name} pinned twice")
            pins[name] = match[2]
        elif line.strip() and not line.startswith((" ", "#")):
            raise ValueError(f"{path}:{number}: not an exact pin (name==version): {line!r}")
    return pins


def installed_versions() -> dict[str, str]:
    """{canonical name: version} of every installed distribution but this project (importlib.metadata)."""
    found = {canonical_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    found.pop("rog", None)
    return found


def lock_mismatches(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """Differences between a lock and an environment, one readable line each, sorted by package."""
    problems = []
    for name in sorted(locked.keys() | installed.keys()):
        want, have = locked.get(name), installed.get(name)
        if want is None:
            problems.append(f"{name}=={have} installed but not in the lock")
        elif have is None:
            problems.append(f"{name}=={want} locked but not installed")
        elif want != have:
            problems.append(f"{name}: locked {want}, installed {have}")
    return problems


def lock_state(root: Path = ROOT) -> dict:
    """{lock_sha256, lock_mismatches: how many installed packages differ from it} (None without the file)."""
    lock = root / LOCK
    if not lock.is_file():
        return {"lock_sha256": None, "lock_mismatches": None}
    return {"lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest(),
            "lock_mismatches": len(lock_mismatches(locked_versions(lock), installed_versions()))}


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def device_description(device=None) -> dict:
    """{device: 'cpu' | 'cuda:N', device_name}. device: a torch.device, 'cpu', 'cuda', 'cuda:N' or 'auto'
    (as train.device); None describes the current CUDA device when CUDA is in use, else the CPU."""
    import torch

    if device is None:
        text = "cuda" if torch.cuda.is_available() and torch.cuda.is_initialized() else "cpu"
    else:
        text = str(device)
        if text == "auto":  # as rog.engine.distributed.local_device
            text = "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda") and torch.cuda.is_available():
        index = int(text.split(":")[1]) if ":" in text else torch.cuda.current_device()
        return {"device": f"cuda:{index}", "device_name": torch.cuda.get_device_name(index)}
    return {"device": "cpu", "device_name": _cpu_model()}


def provenance(device=None, root: str | os.PathLike | None = None, **seconds: float) -> dict:
    """What produces a result now (see the module docstring).

    device: the device computing it (see device_description). seconds: wall seconds to record, e.g.
    evaluate=12.3 -> "seconds": {"evaluate": 12.3} (rounded to 0.01 s). root: the checkout (default:
    the one holding this package). processes: torch.distributed's world size (1 when not initialised).
    """
    import torch
    import torch.distributed as dist

    root = ROOT if root is None else Path(root)
    out = {**git_state(root), **lock_state(root),
           "python": platform.python_version(),
           "torch": torch.__version__,
           "torchvision": _version("torchvision"),
           "numpy": _version("numpy"),
           "torch_threads": torch.get_num_threads(),
           "processes": dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1,
           **device_description(device),
           "machine": {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "platform": platform.platform(),
                       "architecture": platform.machine()}}
    if seconds:
        out["seconds"] = {k: round(float(v), 2) for k, v in seconds.items()}
    return out

"""The running environment is the locked one: requirements.lock (pip-compile --generate-hashes from
pyproject.toml, refreshed by `make lock`) names every installed distribution at its exact version, and
pins every requirement of pyproject.toml (dependencies, dev extras, build system) at a version that
satisfies it. A failure lists every mismatch; `make setup` (or `pip install --require-hashes -r
requirements.lock`) repairs the environment, `make lock` the lock file.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked_versions(path: Path = LOCK) -> dict[str, Version]:
    """{canonical name: version} of every `name==version` line of a pip requirements lock file."""
    pins: dict[str, Version] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match[1])
            if name in pins:
                raise ValueError(f"{path}:{number}: {name} pinned twice")
            pins[name] = Version(match[2])
        elif line and not line.startswith((" ", "#")):
            raise ValueError(f"{path}:{number}: not an exact pin: {line!r}")
    return pins


def installed_versions() -> dict[str, Version]:
    """{canonical name: version} of every distribution importlib.metadata sees, this project excepted."""
    found = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    found.pop("rog", None)
    return found


def lock_mismatches(locked: dict[str, Version], installed: dict[str, Version]) -> list[str]:
    """Human-readable differences between a lock and an environment, sorted by package name."""
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


def test_lock_parser_and_comparison(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nflufl.lock==9.2.0 \\\n    --hash=sha256:ab\n    # via dvc\n"
                    "Torch==2.14.1\nnumpy==2.4.6 ; python_version >= '3.11'\n")
    locked = locked_versions(lock)
    assert locked == {"flufl-lock": Version("9.2.0"), "torch": Version("2.14.1"), "numpy": Version("2.4.6")}
    installed = {"flufl-lock": Version("9.2"), "torch": Version("2.14.0"), "six": Version("1.17.0")}
    assert lock_mismatches(locked, installed) == [
        "numpy==2.4.6 locked but not installed",
        "six==1.17.0 installed but not in the lock",
        "torch: locked 2.14.1, installed 2.14.0",
    ]
    lock.write_text("numpy>=1.26\n")
    try:
        locked_versions(lock)
    except ValueError as error:
        assert "requirements.lock:1" in str(error) and "numpy>=1.26" in str(error)
    else:
        raise AssertionError("a range in the lock file was accepted")


def test_environment_matches_lock():
    problems = lock_mismatches(locked_versions(), installed_versions())
    assert not problems, ("the environment differs from requirements.lock (run `make setup`):\n  "
                          + "\n  ".join(problems))


def test_lock_satisfies_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["dev"],
              *project["build-system"]["requires"]]
    locked = locked_versions()
    problems = []
    for text in wanted:
        requirement = Requirement(text)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"pyproject.toml asks {text}, the lock has {version}")
    assert not problems, "requirements.lock is stale (run `make lock`):\n  " + "\n  ".join(problems)


def test_every_lock_pin_has_hashes():
    lines = LOCK.read_text().splitlines()
    unhashed = [line.split("==")[0] for line, after in zip(lines, [*lines[1:], ""])
                if PIN.match(line) and not after.lstrip().startswith("--hash=sha256:")]
    assert not unhashed, f"requirements.lock pins without hashes (pip install --require-hashes fails): {unhashed}"

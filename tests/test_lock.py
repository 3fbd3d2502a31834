"""The running environment is the locked one: requirements.lock (pip-compile --generate-hashes from
pyproject.toml, refreshed by `make lock`) names every installed distribution at its exact version, and
pins every requirement of pyproject.toml (dependencies, dev extras, build system) at a version that
satisfies it. A failure lists every mismatch; `make setup` (or `pip install --require-hashes -r
requirements.lock`) repairs the environment, `make lock` the lock file. The parser and the comparison
are tested in tests/test_provenance.py.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from rog.provenance import PIN, installed_versions, locked_versions, lock_mismatches

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def test_environment_matches_lock():
    problems = lock_mismatches(locked_versions(LOCK), installed_versions())
    assert not problems, ("the environment differs from requirements.lock (run `make setup`):\n  "
                          + "\n  ".join(problems))


def test_lock_satisfies_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["project"]["optional-dependencies"]["dev"],
              *project["build-system"]["requires"]]
    locked = locked_versions(LOCK)
    problems = []
    for text in wanted:
        requirement = Requirement(text)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(Version(version), prereleases=True):
            problems.append(f"pyproject.toml asks {text}, the lock has {version}")
    assert not problems, "requirements.lock is stale (run `make lock`):\n  " + "\n  ".join(problems)


def test_every_lock_pin_has_hashes():
    lines = LOCK.read_text().splitlines()
    unhashed = [line.split("==")[0] for line, after in zip(lines, [*lines[1:], ""])
                if PIN.match(line) and not after.lstrip().startswith("--hash=sha256:")]
    assert not unhashed, f"requirements.lock pins without hashes (pip install --require-hashes fails): {unhashed}"

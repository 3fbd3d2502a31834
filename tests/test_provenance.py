"""rog.provenance: the commit and dirty flag of a checkout, the lock digest and the environment's
agreement with it, versions, threads, processes, device, machine."""
from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
from pathlib import Path

import numpy
import pytest
import torch

from rog import provenance as prov


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "rog").mkdir(parents=True)
    (root / "rog" / "code.py").write_text("x = 1\n")
    (root / "results").mkdir()
    (root / "results" / "metrics.json").write_text("{}\n")
    (root / ".gitignore").write_text("/out/\n")
    lock = "".join(f"{name}=={version} \\\n    --hash=sha256:00\n"
                   for name, version in sorted(prov.installed_versions().items()))
    (root / "requirements.lock").write_text(lock)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return root


def test_clean_checkout_names_its_commit_and_lock(repo):
    found = prov.provenance("cpu", root=repo)
    assert found["commit"] == git(repo, "rev-parse", "HEAD").strip() and len(found["commit"]) == 40
    assert found["dirty"] is False and found["dirty_files"] == []
    assert found["lock_sha256"] == hashlib.sha256((repo / "requirements.lock").read_bytes()).hexdigest()
    assert found["lock_mismatches"] == 0  # the lock was written from this very environment
    assert found["torch"] == torch.__version__ and found["numpy"] == numpy.__version__
    assert found["python"] == platform.python_version()
    assert found["torch_threads"] == torch.get_num_threads() and found["processes"] == 1
    assert found["device"] == "cpu" and found["machine"]["cpu_count"] >= 1
    assert "seconds" not in found
    assert socket.gethostname() not in json.dumps(found)  # hostname-free
    json.dumps(found)  # JSON-serialisable as it is


def test_dirty_means_changed_code_not_pipeline_outputs(repo):
    (repo / "results" / "metrics.json").write_text('{"AP": 1}\n')  # an output the pipeline rewrites
    (repo / "results" / "new.json").write_text("{}\n")
    (repo / "out").mkdir()
    (repo / "out" / "ignored.pt").write_text("")
    assert prov.git_state(repo)["dirty"] is False
    (repo / "rog" / "code.py").write_text("x = 2\n")
    assert prov.git_state(repo) == {"commit": git(repo, "rev-parse", "HEAD").strip(), "dirty": True,
                                     "dirty_files": ["rog/code.py"]}
    git(repo, "checkout", "-q", "rog/code.py")
    (repo / "rog" / "new_module.py").write_text("")  # code that is not in the commit
    assert prov.git_state(repo)["dirty_files"] == ["rog/new_module.py"]


def test_lock_mismatches_are_counted(repo):
    lock = repo / "requirements.lock"
    lock.write_text(lock.read_text().replace(f"numpy=={numpy.__version__}", "numpy==0.0.1")
                    + "not-a-real-package==1.0 \\\n    --hash=sha256:00\n")
    assert prov.lock_state(repo)["lock_mismatches"] == 2
    assert prov.lock_mismatches(prov.locked_versions(lock), prov.installed_versions()) == [
        "not-a-real-package==1.0 locked but not installed", f"numpy: locked 0.0.1, installed {numpy.__version__}"]


def test_outside_a_checkout_unknowns_are_none(tmp_path):
    found = prov.provenance(torch.device("cpu"), root=tmp_path, evaluate=1.23456, train=10)
    assert (found["commit"], found["dirty"], found["lock_sha256"], found["lock_mismatches"]) == (None, None, None, None)
    assert found["seconds"] == {"evaluate": 1.23, "train": 10.0}


def test_lock_parser_rejects_ranges_and_duplicates(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nflufl.lock==9.2.0 \\\n    --hash=sha256:ab\n    # via dvc\nTorch==2.14.1\n")
    assert prov.locked_versions(lock) == {"flufl-lock": "9.2.0", "torch": "2.14.1"}
    lock.write_text("numpy==2.4.6\nnumpy>=1.26\n")
    with pytest.raises(ValueError, match=r"requirements.lock:2: not an exact pin .*numpy>=1.26"):
        prov.locked_versions(lock)
    lock.write_text("ruamel.yaml==0.19.1\nruamel-yaml==0.19.1\n")
    with pytest.raises(ValueError, match=r"requirements.lock:2: ruamel-yaml pinned twice"):
        prov.locked_versions(lock)


def test_device_description():
    assert prov.device_description("cpu")["device"] == "cpu"
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert prov.device_description("auto")["device"] == expected

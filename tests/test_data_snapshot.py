"""The raw snapshot: data.dvc in sync with data/ and with the DVC remote committed in the repo."""
from __future__ import annotations

import hashlib
import json

import yaml

from data_helpers import ROOT, ensure_snapshot
from rog.data.snapshot import FONT_FILES, FONT_LICENCES, fold_text


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_data_dvc_matches_snapshot_and_remote():
    snapshot = ensure_snapshot()
    out = yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]
    assert out["path"] == "data" and out["md5"].endswith(".dir")
    config = (ROOT / ".dvc" / "config").read_text()
    assert "url = ../dvc-remote" in config and "remote = local" in config
    remote = ROOT / "dvc-remote" / "files" / "md5"
    manifest_path = remote / out["md5"][:2] / out["md5"][2:]
    manifest = json.loads(manifest_path.read_text())
    files = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert sorted(entry["relpath"] for entry in manifest) == files
    for entry in manifest:
        assert _md5(snapshot / entry["relpath"]) == entry["md5"], entry["relpath"]
        assert (remote / entry["md5"][:2] / entry["md5"][2:]).is_file(), f"{entry['relpath']} not in dvc-remote"
    assert out["nfiles"] == len(files)
    for name in FONT_FILES + FONT_LICENCES:
        assert (snapshot / "fonts" / name).is_file()


def test_fold_text():
    assert fold_text("The  *assert*\n statement\n*********\n\tcaf\u00e9 ====") == "The *assert* statement caf"
    corpus = (ensure_snapshot() / "corpus" / "pydoc_topics.txt").read_text(encoding="ascii").strip()
    assert fold_text(corpus) == corpus  # the snapshot is already folded

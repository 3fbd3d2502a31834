"""A run's output folder: which experiment it belongs to, and refusal to mix two experiments in one.

DIR/params.yaml   the resolved params of the run
DIR/run.json      {"params_hash": ..., "signature": ...}: what identifies the run; "provenance":
                  rog.provenance of the last start (commit, lock digest, versions, threads, device)
DIR/checkpoints/last.pt, DIR/checkpoints/iter_NNNNNN.pt (train.keep_every), DIR/model_final.pt,
DIR/losses.jsonl, DIR/diagnostics.json, DIR/curve/ (rog.engine.curve's per-checkpoint cache)
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

from rog.provenance import provenance

# knobs that change how a run executes, not what it computes. keep_every only copies the model to
# checkpoints/iter_*.pt (no RNG draw, no effect on the weights: tests/test_engine.py), so turning it on
# for a finished or half-done run keeps its folder instead of retraining it from scratch. workers do not
# change the batches (each sample is seeded by its position: rog.data.loader). threads and device do change
# the floating-point sums: they stay out of the hash (a finished run may be evaluated anywhere) but a resume
# mid-run with other values is refused (rog.engine.trainer.Trainer.check_resumable). processes (how the run
# is launched) is checked through the checkpoint's world_size instead.
EXECUTION_ONLY = {"train": ("threads", "workers", "device", "checkpoint_every", "keep_every", "processes")}
HASHED_SECTIONS = ("dataset", "model", "train")


class RunDirError(ValueError):
    """The output folder holds another experiment's results (or unrelated files)."""


def params_hash(params: dict) -> str:
    """sha256 (16 hex digits) of the sections that determine a trained model, with the pretrained
    detector's digest in place of its path when model.weights names a file, and model.ranking written as
    the complete `model.gap` mapping it replaced (rog.losses.ranking_terms.as_gap_section): a run keeps the
    hash it was trained under, so its folder, its checkpoints and results/' regime check still know it."""
    from rog.losses.ranking_terms import as_gap_section

    relevant = {k: copy.deepcopy(params.get(k)) for k in HASHED_SECTIONS}
    model = relevant.get("model") or {}
    if isinstance(model.get("ranking"), dict):
        model["gap"] = as_gap_section(model.pop("ranking"))
    for section, keys in EXECUTION_ONLY.items():
        for key in keys:
            (relevant.get(section) or {}).pop(key, None)
    weights = (relevant.get("model") or {}).get("weights")
    if weights:  # the run is what the file holds, wherever it lies: its digest, not its path
        from rog.models.pretrained import weights_digest

        relevant["model"]["weights"] = "sha256:" + weights_digest(weights)
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check(out_dir: Path, params: dict) -> str:
    """Raise RunDirError unless `out_dir` is absent, empty, or holds this same experiment; return the hash."""
    digest = params_hash(params)
    info_path = out_dir / "run.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as err:
            raise RunDirError(f"{info_path}: unreadable ({err}); refusing to write into {out_dir}") from None
        if info.get("params_hash") != digest:
            raise RunDirError(
                f"{out_dir} holds another experiment's results (params hash {info.get('params_hash')} "
                f"vs {digest} now); choose another --out, or delete the folder to start over")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise RunDirError(f"{out_dir} is not empty and holds no run.json: refusing to write a run into it")
    return digest


def initialise(out_dir: Path, params: dict, signature: dict) -> None:
    """Write params.yaml and run.json (rank 0, after `check`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"params_hash": params_hash(params), "signature": signature,
            "provenance": provenance((params.get("train") or {}).get("device"))}
    (out_dir / "run.json").write_text(json.dumps(info, indent=1) + "\n")  # first: it claims the folder
    (out_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

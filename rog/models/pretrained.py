"""Pretrained backbone bodies: the file `python -m rog pretrain` writes, and loading it into a detector.

backbone.pt is a dict (torch.save, readable with weights_only=True)::

    format        FORMAT
    arch          {name: tiny, widths: [...], depth: d}
    body          state_dict of rog.models.backbones.tiny_body (the keys of a detector's backbone.body)
    body_sha256   digest of `body` (`body_digest`): the weights' identity, independent of the metadata
    chars, params, train_accuracy, val_accuracy, history   (how it was made; no timing: reruns are byte-identical)

params.yaml's model.backbone.weights: null (from scratch), a path to such a file, or PRETRAIN ('pretrain'),
the pipeline's pretrain stage output for the profile: out/pipeline/<profile>/pretrain/backbone.pt
(`resolve_weights`, called by rog.config.resolve_run).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

FORMAT = "rog-backbone/1"
PRETRAIN = "pretrain"
PRETRAIN_DIR = "out/pipeline/{profile}/pretrain"
WEIGHTS_FILE = "backbone.pt"


class PretrainedWeightsError(ValueError):
    """A backbone.pt is missing, unreadable, or does not fit the backbone it is loaded into."""


def default_dir(profile: str | None) -> Path:
    return Path(PRETRAIN_DIR.format(profile=profile or "default"))


def resolve_weights(params: dict, profile: str | None, path: str | Path | None = None) -> dict:
    """params with model.backbone.weights 'pretrain' replaced by `path` (default: the pretrain stage's
    output for `profile`); other values are left alone. Changes params in place and returns it."""
    backbone = params["model"]["backbone"]
    if backbone.get("weights") == PRETRAIN:
        backbone["weights"] = str(path if path is not None else default_dir(profile) / WEIGHTS_FILE)
    return params


def body_digest(state: dict) -> str:
    """sha256 (16 hex digits) over a state_dict's keys, dtypes, shapes and values, in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def save(path: str | Path, body: torch.nn.Module, arch: dict, **meta) -> Path:
    """Write backbone.pt atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in body.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "arch": dict(arch), "body": state, "body_sha256": body_digest(state), **meta}, tmp)
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> dict:
    """The dict of a backbone.pt; PretrainedWeightsError naming the file when it is missing or foreign."""
    path = Path(path)
    if str(path) == PRETRAIN:
        raise PretrainedWeightsError("model.backbone.weights 'pretrain' was not resolved to a file "
                                     "(rog.models.pretrained.resolve_weights)")
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: no such pretrained backbone (model.backbone.weights); write it "
                                     "with `python -m rog pretrain` or `dvc repro pretrain`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise PretrainedWeightsError(f"{path}: not a readable backbone file: {type(err).__name__}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PretrainedWeightsError(f"{path}: not a rog pretrained backbone (expected format '{FORMAT}')")
    return data


def weights_digest(path: str | Path) -> str:
    """The identity of the weights in a backbone.pt (its stored body_sha256)."""
    return str(load(path)["body_sha256"])


def load_weights(backbone, params: dict):
    """Load model.backbone.weights (if set) into `backbone.body`; returns `backbone`.

    params: the model section's backbone mapping. The file's arch must match (name, widths, depth).
    """
    path = params.get("weights")
    if not path:
        return backbone
    data = load(path)
    want = {"name": params.get("name"), "widths": [int(w) for w in params.get("widths", ())],
            "depth": int(params.get("depth", 0))}
    have = {k: data["arch"].get(k) for k in want}
    if want["name"] != "tiny" or have != want:
        raise PretrainedWeightsError(f"{path}: pretrained backbone {have} does not match model.backbone {want}")
    try:
        backbone.body.load_state_dict(data["body"])
    except RuntimeError as err:
        raise PretrainedWeightsError(f"{path}: body weights do not fit the backbone: {err}") from None
    return backbone

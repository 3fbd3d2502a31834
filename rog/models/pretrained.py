"""A pretrained detector: the file `python -m rog pretrain` writes, and starting a detector from it.

The paper's detectors start from ImageNet weights; ours start from a whole detector trained once on glyphs
of characters that are no LT-Glyphs category (rog.engine.pretrain). detector.pt is a dict (torch.save,
readable with weights_only=True)::

    format        FORMAT
    state         the pretrained detector's state_dict (torchvision MaskRCNN / FasterRCNN keys)
    sha256        digest of `state` (`state_digest`): the weights' identity, independent of the metadata
    chars, num_classes, params     (how it was made; no timing: reruns are byte-identical)

params.yaml's model.weights: null (from scratch), a path to such a file, or PRETRAIN ('pretrain'): the
pipeline's pretrain stage output for the profile, out/pipeline/<profile>/pretrain/detector.pt
(rog.paths.resolve_weights, called by rog.config.resolve_run).

`transfer` copies every layer into a freshly built detector except the classifier, whose classes differ.
The class-specific layers, box regression [C x 4, D] and mask logits [C, ...], start from the mean over
the pretrained classes, replicated for each new class: every class starts from the average glyph's box
and mask, as a class-agnostic head would, and then specialises.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch

from rog.paths import PRETRAIN, PRETRAIN_DIR, WEIGHTS_FILE, pretrain_dir, resolve_weights  # noqa: F401

FORMAT = "rog-detector/1"
CLASSIFIER_PREFIX = "roi_heads.box_predictor.cls_score."
# class-specific layers: name -> rows per class of dim 0
PER_CLASS = {"roi_heads.box_predictor.bbox_pred.weight": 4, "roi_heads.box_predictor.bbox_pred.bias": 4,
             "roi_heads.mask_predictor.mask_fcn_logits.weight": 1,
             "roi_heads.mask_predictor.mask_fcn_logits.bias": 1}


class PretrainedWeightsError(ValueError):
    """A detector.pt is missing, unreadable, or does not fit the detector it is loaded into."""


def default_dir(profile: str | None) -> Path:
    return pretrain_dir(profile)


def state_digest(state: dict) -> str:
    """sha256 (16 hex digits) over a state_dict's keys, dtypes, shapes and values, in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def save(path: str | Path, state: dict, **meta) -> Path:
    """Write detector.pt atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in state.items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "state": state, "sha256": state_digest(state), **meta}, tmp)
    os.replace(tmp, path)
    return path


def load(path: str | Path) -> dict:
    """The dict of a detector.pt; PretrainedWeightsError naming the file when it is missing or foreign."""
    path = Path(path)
    if str(path) == PRETRAIN:
        raise PretrainedWeightsError("model.weights 'pretrain' was not resolved to a file "
                                     "(rog.models.pretrained.resolve_weights)")
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: no such pretrained detector (model.weights); write it "
                                     "with `python -m rog pretrain` or `dvc repro pretrain`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise PretrainedWeightsError(f"{path}: not a readable detector file: {type(err).__name__}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PretrainedWeightsError(f"{path}: not a rog pretrained detector (expected format '{FORMAT}')")
    return data


def weights_digest(path: str | Path) -> str:
    """The identity of the weights in a detector.pt (its stored sha256). Read once per file version: a run's
    start asks for it three times (model signature, params hash, run folder check)."""
    path = Path(path)
    stat = path.stat() if path.is_file() else None
    return _digest(str(path), stat.st_mtime_ns if stat else None, stat.st_size if stat else None)


@functools.lru_cache(maxsize=8)
def _digest(path: str, mtime_ns: int | None, size: int | None) -> str:
    return str(load(path)["sha256"])


def class_mean(source: torch.Tensor, rows: int, num_classes: int) -> torch.Tensor:
    """[C' x rows, ...] per-class rows -> [C x rows, ...]: the mean over the C' source classes, repeated."""
    rest = source.shape[1:]
    mean = source.reshape(-1, rows, *rest).mean(0)
    return mean.unsqueeze(0).expand(num_classes, rows, *rest).reshape(num_classes * rows, *rest).clone()


def transferred_state(source: dict, target: dict, num_classes: int, path: str | Path = "") -> dict:
    """The target state_dict with the source's weights (see the module docstring).

    Kept from the target: the classifier (CLASSIFIER_PREFIX) and what the source lacks (an objective's or
    the ranking term's own buffers). Any other key whose shape differs is an architecture mismatch.
    """
    out = dict(target)
    for key, value in target.items():
        if key.startswith(CLASSIFIER_PREFIX) or key not in source:
            continue
        if key in PER_CLASS:
            out[key] = class_mean(source[key], PER_CLASS[key], num_classes).to(value.dtype)
            continue
        if source[key].shape != value.shape:
            raise PretrainedWeightsError(f"{path}: {key} is {tuple(source[key].shape)} in the pretrained detector "
                                         f"and {tuple(value.shape)} in model; pretrain with the same model section")
        out[key] = source[key].to(value.dtype)
    return out


def transfer(model: torch.nn.Module, path: str | Path, num_classes: int) -> torch.nn.Module:
    """Start `model` (a detector of rog.models.builder) from the pretrained detector in `path`."""
    source = load(path)["state"]
    model.load_state_dict(transferred_state(source, model.state_dict(), num_classes, path))
    return model

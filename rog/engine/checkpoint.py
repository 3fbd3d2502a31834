"""Checkpoints: written atomically, read with clear errors, checked against the model they load into.

A checkpoint is a dict::

    format        FORMAT
    signature     rog.models.builder.model_signature(...): arch, backbone, weights_sha256, objective,
                  num_classes, hash
    params        the resolved params the run was started with (`load` puts them in today's layout:
                  upgraded_params)
    iteration     optimizer steps done
    model         state_dict, buffers included (BN statistics, GAP counts, objective statistics)
    optimizer, scheduler, sampler, rng (one entry per process), diagnostics  (training state)

A kept checkpoint (train.keep_every; checkpoints/iter_NNNNNN.pt) holds only MODEL_KEYS: what inference
needs, about half a full checkpoint (no optimizer momentum, no training state). It cannot resume.

Integrity: torch.save writes a zip whose members carry CRC-32s of their bytes; `load` checks every one
before unpickling (about 30 ms for 40 MB), so a bit-rotted file (same size, bytes flipped) is refused
with its name instead of being evaluated or resumed. `save` writes to `.NAME.tmpPID` beside the target,
fsyncs, then renames; `clean_partial` removes the temp files a killed write leaves behind.
"""
from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "rog-checkpoint/1"
MODEL_KEYS = ("signature", "params", "params_hash", "iteration", "world_size", "class_counts", "model")
KEPT_PREFIX = "iter_"
# params keys added after checkpoints were first written, each with what a checkpoint without it meant, so
# every reader of state["params"] (evaluation, --set overrides on them) sees today's keys
ADDED_KEYS = {("model", "test", "masks_per_img"): None}  # None: a mask for every kept detection
# state-dict prefixes renamed since: model.gap became model.ranking (GAP's online counts are a buffer)
RENAMED_MODULES = {"roi_heads.gap.": "roi_heads.ranking."}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to another model."""


def save(path: str | Path, state: dict, previous: str | Path | None = None) -> Path:
    """Write `state` to `path` atomically: a killed write never leaves a half-written checkpoint.

    previous: where the file that `path` held moves first (the fallback of a resume when the newer one
    turns out corrupt); None: it is replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(dict(state, format=FORMAT), f)
        f.flush()
        os.fsync(f.fileno())
    if previous is not None and path.is_file():
        os.replace(path, previous)
    os.replace(tmp, path)
    return path


def clean_partial(folder: str | Path) -> list[Path]:
    """Remove the temp files of interrupted `save`s in `folder` and its checkpoints/; return them."""
    folder = Path(folder)
    found = [p for d in (folder, folder / "checkpoints") if d.is_dir()
             for p in d.glob(".*.pt.tmp*") if p.is_file()]
    for p in found:
        p.unlink()
    return found


def verify(path: str | Path) -> None:
    """CheckpointError naming `path` unless it is a zip whose every member matches its CRC-32."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupted or truncated?): "
                              f"{type(err).__name__}: {err}") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted checkpoint: member '{bad}' fails its CRC-32 check "
                              "(the file was damaged after it was written)")


def is_intact(path: str | Path) -> bool:
    """Whether `path` is a checkpoint file that passes `verify`."""
    try:
        verify(path)
    except CheckpointError:
        return False
    return Path(path).is_file()


def load(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by `save`; CheckpointError if it is missing, corrupted or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    verify(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupted or truncated?): "
                              f"{type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a rog checkpoint (expected format '{FORMAT}')")
    for key in ("signature", "params", "iteration", "model"):
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    state["params"] = upgraded_params(state["params"])
    state["model"] = {_renamed(key): value for key, value in state["model"].items()}
    return state


def _renamed(key: str) -> str:
    for old, new in RENAMED_MODULES.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def upgraded_params(params: dict) -> dict:
    """A run's stored params in today's layout: ADDED_KEYS filled in (with_added_keys), and the old
    `model.gap` mapping turned into `model.ranking` (rog.losses.ranking_terms.from_gap_section)."""
    from rog.losses.ranking_terms import from_gap_section

    model = params.get("model")
    if isinstance(model, dict) and isinstance(model.get("gap"), dict) and "ranking" not in model:
        model["ranking"] = from_gap_section(model.pop("gap"))
    return with_added_keys(params)


def with_added_keys(params: dict) -> dict:
    """`params` with each ADDED_KEYS key it lacks set to what its absence meant (sections it lacks stay absent)."""
    for (*sections, key), absent in ADDED_KEYS.items():
        node = params
        for name in sections:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault(key, absent)
    return params


def model_only(state: dict) -> dict:
    """The part of a checkpoint dict that evaluation needs (MODEL_KEYS): a kept checkpoint."""
    return {k: state[k] for k in MODEL_KEYS if k in state}


def kept_path(run_dir: str | Path, iteration: int) -> Path:
    """RUN_DIR/checkpoints/iter_NNNNNN.pt: the model kept at `iteration` (train.keep_every)."""
    return Path(run_dir) / "checkpoints" / f"{KEPT_PREFIX}{int(iteration):06d}.pt"


def kept_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every kept checkpoint of a run folder, by iteration (model_final.pt not included)."""
    found = []
    for path in (Path(run_dir) / "checkpoints").glob(f"{KEPT_PREFIX}*.pt"):
        digits = path.stem[len(KEPT_PREFIX):]
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def check_signature(state: dict, signature: dict, path: str | Path = "checkpoint") -> None:
    """CheckpointError listing every difference in architecture, backbone, objective, classes, mask head."""
    saved = state["signature"]
    keys = ("arch", "backbone", "weights_sha256", "objective", "num_classes", "mask")
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs model {signature.get(k)!r}" for k in keys
             if saved.get(k) != signature.get(k)]
    if diffs:
        raise CheckpointError(f"{path}: checkpoint is from another model: " + "; ".join(diffs))


def counts_to_state(counts) -> dict | None:
    """CategoryCounts -> a weights_only-safe dict (objectives that need counts are rebuilt from it)."""
    if counts is None:
        return None
    return {"instance_count": counts.instance_count, "image_count": counts.image_count,
            "num_images": int(counts.num_images), "frequency": list(counts.frequency)}


def counts_from_state(state: dict):
    """The CategoryCounts saved in a checkpoint dict (None if it has none)."""
    from rog.losses.counts import CategoryCounts

    saved = state.get("class_counts")
    if saved is None:
        return None
    return CategoryCounts(instance_count=saved["instance_count"], image_count=saved["image_count"],
                          num_images=int(saved["num_images"]), frequency=tuple(saved["frequency"]))


def rng_state() -> dict:
    """This process's RNG states (torch CPU and CUDA, numpy, python), in a weights_only-safe form."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": _python_state_to_lists(random.getstate()),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _python_state_to_lists(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]

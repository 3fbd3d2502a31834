"""OpenImages (challenge split) -> the internal LVIS-like json, converted once and cached by the inputs' digests.

`dataset.name: openimages` reads the challenge files from `dataset.root` (the folder layout is
below; the formats and their sources are in rog.data.openimages_files). `split_files(dataset_params,
split)` returns (json path, image root) like rog.data.build.dataset_paths, so LVISDataset, the sampler
and the LVIS-style evaluation read OpenImages unchanged. The json is written to ROOT/converted/ as
``{split}-{digest}.json`` where the digest covers the format version, the split, the image folder and
every input file's sha256, so a re-run reads the cache and a changed input converts again (sizes read
from image files are not digested: replace an image by one of another size and delete the cache).
Nothing is written unless every row of every input is valid (OpenImagesFormatError / ImageReadError
otherwise, naming the file and row).

The converted json::

    categories  [{id: 1..C in the class-description order, name (DisplayName), label_name (/m/...),
                  image_count, instance_count (training images / boxes), frequency r|c|f (LVIS's cut
                  of image_count: 1-10, 11-100, more), group 1..5 (EQLv2's, see rog.data.oid_groups),
                  parent_ids, ancestor_ids (the hierarchy)}]
    images      [{id: 1..N (ImageIDs sorted), oid_image_id, file_name: ImageID.jpg (below the image folder), height, width,
                  pos_category_ids (verified present), neg_category_ids (verified absent),
                  not_exhaustive_category_ids: []}]
    annotations [{id, image_id, category_id, bbox [x, y, w, h] pixels, area (box area), is_group_of,
                  is_occluded, ... (the flags the CSV has), row (its row in the box CSV)}]
    openimages  {split, source files and digests, grouping rule}

Boxes keep their own (leaf) labels; the challenge metric expands them up the hierarchy itself
(rog.evaluation.oid_challenge). Images: those of the box CSV; for the validation split also those
of the image-level labels (an image with verified labels and no box is still evaluated), while
training, which skips images without boxes, needs none of their files. Counts are from the training split's box CSV
whichever split is converted, as LVIS's val json carries the training counts.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from rog.data.lvis_dataset import ImageReadError
from rog.data.oid_groups import GROUP_RULE, eqlv2_groups, lvis_frequency
from rog.data.openimages_files import (ancestors, iter_boxes, read_boxes, read_classes, read_hierarchy,
                                       read_image_labels, read_sizes)

FORMAT_VERSION = 1
SPLITS = ("train", "val")


# The folder layout below dataset.root: the files under the names they are distributed with (the 2019
# challenge's, https://storage.googleapis.com/openimages/web/challenge2019_downloads.html as listed by
# EQLv2's tools/openimages2coco/convert_annotations.py). The box CSVs are dataset.train_json / val_json
# (so that V6 files or a subset can stand in); images are IMAGE_ROOT/train/ and IMAGE_ROOT/validation/
# (dataset.image_root below root), one ImageID.jpg each; an optional sizes CSV at root is used when present.
CLASSES_FILE = "challenge-2019-classes-description-500.csv"
HIERARCHY_FILE = "challenge-2019-label500-hierarchy.json"
LABELS_FILES = {"train": "challenge-2019-train-detection-human-imagelabels.csv",
                "val": "challenge-2019-validation-detection-human-imagelabels.csv"}
SIZES_FILES = {"train": "train_sizes-00000-of-00001.csv", "val": "validation_sizes-00000-of-00001.csv"}
IMAGE_FOLDERS = {"train": "train", "val": "validation"}
CACHE_FOLDER = "converted"


def _below(root: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else root / p


def split_inputs(dataset_params: dict, split: str) -> dict[str, Path | None]:
    """The input files of a split (the layout above): classes, hierarchy, boxes (dataset.{split}_json),
    labels, sizes (None when absent: sizes from the images), train_boxes (for the counts) and images."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(dataset_params["root"])
    sizes = root / SIZES_FILES[split]
    return {"classes": root / CLASSES_FILE, "hierarchy": root / HIERARCHY_FILE,
            "boxes": _below(root, dataset_params[f"{split}_json"]), "labels": root / LABELS_FILES[split],
            "sizes": sizes if sizes.is_file() else None,
            "train_boxes": _below(root, dataset_params["train_json"]),
            "images": _below(root, dataset_params["image_root"]) / IMAGE_FOLDERS[split]}


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file (memoised per path, size and modification time within a process)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: OpenImages file not found")
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def cache_key(inputs: dict[str, Path | None], split: str) -> str:
    """Digest of the format version, the split, the image folder's name and every input file's sha256."""
    parts = {"format": FORMAT_VERSION, "split": split, "images": str(inputs["images"])}
    for name in ("classes", "hierarchy", "boxes", "labels", "sizes", "train_boxes"):
        parts[name] = file_digest(inputs[name]) if inputs[name] is not None else None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def split_files(dataset_params: dict, split: str) -> tuple[Path, Path]:
    """(converted json, image root) of `split`, converting first when the cache has no json for these inputs."""
    inputs = split_inputs(dataset_params, split)
    path = Path(dataset_params["root"]) / CACHE_FOLDER / f"{split}-{cache_key(inputs, split)}.json"
    if not path.is_file():
        with _exclusive(inputs["boxes"]):  # the processes of one torchrun: one converts, the others wait
            if not path.is_file():
                write_json_atomic(path, convert(inputs, split))
    return path, inputs["images"]


@contextmanager
def _exclusive(path: Path):
    """An exclusive flock on an input file for the block (no file is written; where the file system has
    no flock, no lock: each process then converts, and the atomic writes leave one json)."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            pass
        try:
            yield
        finally:
            try:
                fcntl.flock(f, fcntl.LOCK_UN)
            except OSError:
                pass


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def image_size(path: Path, image_id: str, named_in: str) -> tuple[int, int]:
    """(width, height) from the image file's header; ImageReadError naming the file and where the image
    was first named when it is missing or unreadable."""
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found (image {image_id}, {named_in})")
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot read image ({named_in}): {err}") from None


def category_counts(train_boxes: Iterable[dict], num_classes: int) -> tuple[list[int], list[int]]:
    """([training images per class], [training boxes per class]) from the training box rows."""
    instances = [0] * num_classes
    images: list[set[str]] = [set() for _ in range(num_classes)]
    for b in train_boxes:
        instances[b["label"]] += 1
        images[b["label"]].add(b["image"])
    return [len(s) for s in images], instances


def convert(inputs: dict[str, Path | None], split: str) -> dict:
    """Read and check every input of a split and return the LVIS-like dict (module docstring)."""
    classes = read_classes(inputs["classes"])
    index = {label: k for k, (label, _) in enumerate(classes)}
    parents = read_hierarchy(inputs["hierarchy"], set(index), inputs["classes"])
    above = ancestors(parents)
    boxes = read_boxes(inputs["boxes"], index, inputs["classes"])
    train_boxes = boxes if inputs["train_boxes"] == inputs["boxes"] else \
        iter_boxes(inputs["train_boxes"], index, inputs["classes"])
    verified = read_image_labels(inputs["labels"], index, inputs["classes"])
    sizes = read_sizes(inputs["sizes"]) if inputs["sizes"] is not None else None

    image_counts, instance_counts = category_counts(train_boxes, len(classes))
    groups = eqlv2_groups(instance_counts)
    categories = [{
        "id": k + 1, "name": name, "label_name": label, "image_count": image_counts[k],
        "instance_count": instance_counts[k], "frequency": lvis_frequency(image_counts[k]), "group": groups[k],
        "parent_ids": sorted(index[p] + 1 for p in parents.get(label, ())),
        "ancestor_ids": sorted(index[a] + 1 for a in above.get(label, ())),
    } for k, (label, name) in enumerate(classes)]

    first_named: dict[str, str] = {}
    for b in boxes:
        first_named.setdefault(b["image"], f"first named in {inputs['boxes']} row {b['row']}")
    if split == "val":  # an image with verified labels and no box is evaluated; training would skip it
        for image, entry in verified.items():
            first_named.setdefault(image, f"first named in {inputs['labels']} row {entry['row']}")
    images, image_ids = [], {}
    for k, oid in enumerate(sorted(first_named)):
        file_path = inputs["images"] / f"{oid}.jpg"
        if sizes is not None:
            if oid not in sizes:
                raise ImageReadError(f"{inputs['sizes']}: no size for image {oid} ({first_named[oid]})")
            w, h = sizes[oid]
        else:
            w, h = image_size(file_path, oid, first_named[oid])
        entry = verified.get(oid, {"positive": set(), "negative": set()})
        image_ids[oid] = k + 1
        images.append({"id": k + 1, "oid_image_id": oid, "file_name": f"{oid}.jpg", "height": h, "width": w,
                       "pos_category_ids": sorted(c + 1 for c in entry["positive"]),
                       "neg_category_ids": sorted(c + 1 for c in entry["negative"]),
                       "not_exhaustive_category_ids": []})
    annotations = []
    for n, b in enumerate(boxes):
        img = images[image_ids[b["image"]] - 1]
        x, y = b["x0"] * img["width"], b["y0"] * img["height"]
        w, h = (b["x1"] - b["x0"]) * img["width"], (b["y1"] - b["y0"]) * img["height"]
        ann = {"id": n + 1, "image_id": img["id"], "category_id": b["label"] + 1, "bbox": [x, y, w, h],
               "area": w * h, "row": b["row"]}
        ann.update({k: v for k, v in b.items() if k.startswith("is_")})
        annotations.append(ann)
    return {"images": images, "annotations": annotations, "categories": categories,
            "openimages": {"split": split, "format": FORMAT_VERSION, "group_rule": GROUP_RULE,
                           "sources": {k: (str(v) if v is not None else None) for k, v in inputs.items()}}}

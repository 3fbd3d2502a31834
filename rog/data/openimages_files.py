"""Readers of the OpenImages detection files as distributed for the challenge split, each checked row by row.

The files (names of the 2019 challenge split, which EQLv2, and so the paper's Table 6, trains and
evaluates on: tztztztztz/eqlv2, tools/openimages2coco/convert_annotations.py, `challenge_2019`):

- class descriptions, ``challenge-2019-classes-description-500.csv``: no header, one class a row,
  ``LabelName,DisplayName`` (``/m/061hd_,Infant bed``); the row order is the class order
  (mmdetection, mmdet/datasets/openimages.py ``get_classes_from_csv``; EQLv2's converter numbers
  categories 1..C in this order).
- boxes, ``challenge-2019-{train,validation}-detection-bbox.csv``: a header row, then one box a row.
  Columns are found by name: ``ImageID, LabelName, XMin, XMax, YMin, YMax`` (corners normalised to
  [0, 1]; note the order XMin, XMax, YMin, YMax) and ``IsGroupOf`` are required; ``IsOccluded,
  IsTruncated, IsDepiction, IsInside`` (and ``Source, Confidence``) are read when present. The V6
  files (``oidv6-train-annotations-bbox.csv``) have all thirteen columns, ``ImageID, Source,
  LabelName, Confidence, XMin, XMax, YMin, YMax, IsOccluded, IsTruncated, IsGroupOf, IsDepiction,
  IsInside`` (mmdetection's ``OpenImagesDataset.load_annotations`` reads them by these positions;
  EQLv2's converter by these names). Flags are 0 or 1 (-1: unknown, in some releases).
- human-verified image-level labels, ``challenge-2019-{train,validation}-detection-human-imagelabels.csv``:
  a header, ``ImageID, LabelName, Confidence`` (``Source`` too): Confidence 1 a verified positive,
  0 a verified negative (EQLv2's converter, utils.convert_image_annotations; the TF Object Detection
  API's challenge evaluation, research/object_detection/metrics/oid_challenge_evaluation_utils.py,
  which makes them the classes evaluated in the image).
- class hierarchy, ``challenge-2019-label500-hierarchy.json``: a tree of ``{"LabelName": ...,
  "Subcategory": [nodes]}`` whose root (``/m/0bl9f``, Entity) is not a class (TF Object Detection
  API, research/object_detection/dataset_tools/oid_hierarchical_labels_expansion.py; mmdetection's
  ``OpenImagesDataset._convert_hierarchy_tree``). A class may sit under several parents.
- image sizes (optional): a header, then ``ImageID, Width, Height`` (the ``*_sizes-00000-of-00001.csv``
  that EQLv2's converter reads, utils.convert_image_annotations); without it the sizes are read from
  the images' headers.

Every reader raises OpenImagesFormatError naming the file and the row (row N is the file's N-th line,
the header being row 1) and what is wrong: an unknown label id, a coordinate outside [0, 1], XMin >
XMax, a row with fewer fields than the header (a truncated file), a hierarchy node that names no class.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterator

from rog.data.lvis_dataset import LVISFormatError

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf")
BOX_FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
LABEL_COLUMNS = ("ImageID", "LabelName", "Confidence")
SIZE_COLUMNS = ("ImageID", "Width", "Height")


class OpenImagesFormatError(LVISFormatError):
    """An OpenImages file is malformed; the message names the file, the row and the problem."""


def _fail(path, row: int | None, problem: str):
    where = f"{path}, row {row}" if row is not None else str(path)
    raise OpenImagesFormatError(f"{where}: {problem}")


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: OpenImages file not found")
    return open(path, newline="", encoding="utf-8")


def csv_rows(path: str | Path, required: tuple[str, ...], header: bool = True) -> Iterator[tuple[int, dict]]:
    """(row number, {column: text}) for each data row of a CSV whose header names `required` (and
    maybe more columns). A row with another number of fields than the header (a truncated or torn
    file) or an empty required field is an error naming the row. Without a header (`header=False`)
    the columns are `required`, in order."""
    path = Path(path)
    with _open(path) as f:
        reader = csv.reader(f)
        columns = list(required)
        row = 0
        try:
            for fields in reader:
                row = reader.line_num
                if header and row == 1:
                    columns = [c.strip().lstrip("\ufeff") for c in fields]
                    missing = [c for c in required if c not in columns]
                    if missing:
                        _fail(path, 1, f"header lacks column(s) {', '.join(missing)} (has {', '.join(columns)})")
                    continue
                if not fields:
                    continue  # a blank line
                if len(fields) != len(columns):
                    _fail(path, row, f"{len(fields)} fields where the header has {len(columns)} "
                                     "(a truncated or torn file?)")
                record = dict(zip(columns, (v.strip() for v in fields)))
                empty = [c for c in required if record[c] == ""]
                if empty:
                    _fail(path, row, f"empty {', '.join(empty)}")
                yield row, record
        except csv.Error as err:
            _fail(path, row + 1, f"not a CSV row: {err} (a truncated or torn file?)")
        if header and row == 0:
            _fail(path, None, "empty file: no header row")


def read_classes(path: str | Path) -> list[tuple[str, str]]:
    """[(LabelName, DisplayName)] in file order; a header row LabelName,DisplayName is skipped."""
    out, seen = [], set()
    for row, rec in csv_rows(path, ("LabelName", "DisplayName"), header=False):
        if row == 1 and rec["LabelName"] == "LabelName":
            continue
        if rec["LabelName"] in seen:
            _fail(path, row, f"label id '{rec['LabelName']}' is listed twice")
        seen.add(rec["LabelName"])
        out.append((rec["LabelName"], rec["DisplayName"]))
    if not out:
        _fail(path, None, "no classes")
    return out


def read_hierarchy(path: str | Path, classes: set[str], classes_path: str | Path) -> dict[str, set[str]]:
    """Direct parents of each class named in the hierarchy: {LabelName: {parent LabelName}} (the root,
    which is not a class, is nobody's parent). A node naming a label that is not in `classes` is an
    error naming the node's place (root.Subcategory[i]...)."""
    path = Path(path)
    with _open(path) as f:
        try:
            tree = json.load(f)
        except json.JSONDecodeError as err:
            _fail(path, err.lineno, f"not valid JSON: {err.msg} (a truncated file?)")
    if not isinstance(tree, dict) or not isinstance(tree.get("LabelName"), str):
        _fail(path, None, "the top level must be a node {\"LabelName\": ..., \"Subcategory\": [...]}")
    parents: dict[str, set[str]] = {}
    stack = [(tree, "root", None)]
    while stack:
        node, where, parent = stack.pop()
        label = node.get("LabelName") if isinstance(node, dict) else None
        if not isinstance(label, str):
            _fail(path, None, f"node {where}: needs a string 'LabelName'")
        if parent is not None or where != "root":
            if label not in classes:
                _fail(path, None, f"node {where} names '{label}', which is not a class of {classes_path}")
            parents.setdefault(label, set())
            if parent is not None:
                parents[label].add(parent)
        children = node.get("Subcategory", [])
        if not isinstance(children, list):
            _fail(path, None, f"node {where} ('{label}'): 'Subcategory' must be a list")
        for i, child in enumerate(children):
            stack.append((child, f"{where}.Subcategory[{i}]", label if where != "root" else None))
    return parents


def ancestors(parents: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every class above each class (transitively; a class is not its own ancestor)."""
    out: dict[str, set[str]] = {}

    def up(label: str, seen: tuple[str, ...]) -> set[str]:
        if label in out:
            return out[label]
        found: set[str] = set()
        for p in parents.get(label, ()):
            if p not in seen:
                found |= {p} | up(p, seen + (p,))
        out[label] = found
        return found

    for label in parents:
        up(label, (label,))
    return out


def _unit(path, row: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        _fail(path, row, f"{column} '{text}' is not a number")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        _fail(path, row, f"{column} {text} is outside [0, 1] (coordinates are normalised to the image)")
    return value


def _flag(path, row: int, column: str, text: str) -> int:
    if text not in ("0", "1", "-1"):
        _fail(path, row, f"{column} must be 0, 1 (or -1: unknown), got '{text}'")
    return int(text)


def read_boxes(path: str | Path, labels: dict[str, int], classes_path: str | Path) -> list[dict]:
    """One dict per box row: image (ImageID), row, label (index into the classes), x0, x1, y0, y1
    (normalised, x0 <= x1, y0 <= y1) and the flags present (is_group_of, is_occluded, ...: 0/1/-1)."""
    return list(iter_boxes(path, labels, classes_path))


def iter_boxes(path: str | Path, labels: dict[str, int], classes_path: str | Path) -> Iterator[dict]:
    """read_boxes one row at a time (counting the training boxes need not hold them all)."""
    path = Path(path)
    flags = None
    for row, rec in csv_rows(path, BOX_COLUMNS):
        if flags is None:
            flags = [c for c in BOX_FLAGS if c in rec]
        label = labels.get(rec["LabelName"])
        if label is None:
            _fail(path, row, f"unknown label id '{rec['LabelName']}' (not a class of {classes_path})")
        x0, x1 = _unit(path, row, "XMin", rec["XMin"]), _unit(path, row, "XMax", rec["XMax"])
        y0, y1 = _unit(path, row, "YMin", rec["YMin"]), _unit(path, row, "YMax", rec["YMax"])
        if x0 > x1:
            _fail(path, row, f"XMin {rec['XMin']} > XMax {rec['XMax']}")
        if y0 > y1:
            _fail(path, row, f"YMin {rec['YMin']} > YMax {rec['YMax']}")
        box = {"image": rec["ImageID"], "row": row, "label": label, "x0": x0, "x1": x1, "y0": y0, "y1": y1}
        for column in flags:
            box["is_" + column[2:].lower().replace("groupof", "group_of")] = _flag(path, row, column, rec[column])
        yield box


def read_image_labels(path: str | Path, labels: dict[str, int], classes_path: str | Path) -> dict[str, dict]:
    """{ImageID: {"row": first row, "positive": {label index}, "negative": {label index}}} from the
    human-verified image-level labels (Confidence 1: present, 0: verified absent)."""
    path = Path(path)
    out: dict[str, dict] = {}
    for row, rec in csv_rows(path, LABEL_COLUMNS):
        label = labels.get(rec["LabelName"])
        if label is None:
            _fail(path, row, f"unknown label id '{rec['LabelName']}' (not a class of {classes_path})")
        try:
            confidence = float(rec["Confidence"])
        except ValueError:
            confidence = math.nan
        if confidence not in (0.0, 1.0):
            _fail(path, row, f"Confidence must be 1 (verified present) or 0 (verified absent), "
                             f"got '{rec['Confidence']}'")
        entry = out.setdefault(rec["ImageID"], {"row": row, "positive": set(), "negative": set()})
        entry["positive" if confidence == 1.0 else "negative"].add(label)
    return out


def read_sizes(path: str | Path) -> dict[str, tuple[int, int]]:
    """{ImageID: (width, height)} from an ImageID,Width,Height CSV."""
    out = {}
    for row, rec in csv_rows(path, SIZE_COLUMNS):
        try:
            w, h = int(rec["Width"]), int(rec["Height"])
        except ValueError:
            w = h = 0
        if w < 1 or h < 1:
            _fail(path, row, f"Width and Height must be integers >= 1, got '{rec['Width']}', '{rec['Height']}'")
        out[rec["ImageID"]] = (w, h)
    return out

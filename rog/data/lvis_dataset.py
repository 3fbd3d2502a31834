"""LVISDataset: LVIS v1 json (LT-Glyphs or real LVIS v1 + COCO images) as a torchvision detection dataset.

Labels: the dataset gives **contiguous foreground labels 0..C-1** (category ids sorted ascending:
label k is `category_ids[k]`). torchvision's detection models reserve 0 for background and expect
1..C; the detector adds 1 at its own boundary. Results files need LVIS category ids back:
`dataset.category_ids[label]` (or `labels_to_category_ids`).

`dataset[i]` -> (image, target)::

    image   float32 [3, H, W] in 0..1
    target  boxes     float32 [N, 4]  x0, y0, x1, y1 in pixels (LVIS bbox x, y, w, h -> x, y, x + w, y + h)
            labels    int64   [N]     contiguous 0..C-1
            masks     uint8   [N, H, W] (0/1; only with with_masks=True)
            area      float32 [N]     LVIS area (mask area)
            iscrowd   int64   [N]     zeros (LVIS has no crowd annotations)
            image_id  int64   []      the LVIS image id

Image files: an image record's `file_name` below `image_root`, or, for real LVIS v1 (which has
`coco_url` and no `file_name`), the url's last two parts (train2017/000000391895.jpg).

Images without annotations are kept with empty targets (N = 0), except with `filter_empty=True`
(training on LVIS, as detectron2 and mmdet do); LVIS evaluation still counts them through their
neg_category_ids. Boxes narrower or shorter than `min_box_size` pixels are dropped with a warning
that gives their count.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from rog.losses.counts import CategoryCounts


class LVISFormatError(ValueError):
    """A json file is not in LVIS format; the message names the file and the problem."""


class ImageReadError(OSError):
    """An image file is missing, unreadable or not of the size its record says."""


def _fail(path, problem: str):
    raise LVISFormatError(f"{path}: {problem}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    """A finite int or float (json.load accepts NaN and Infinity)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def rle_string_counts(counts: str) -> list[int] | None:
    """Run lengths of a compressed COCO RLE string (pycocotools' rleFrString, in Python), or None if it
    is malformed: a character outside '0'..'o' or a number cut short. Checked here because pycocotools
    reads malformed strings out of bounds (it may abort the process)."""
    runs: list[int] = []
    x = k = 0
    for c in counts.encode("latin-1", errors="replace"):
        c -= 48
        if not 0 <= c < 64:
            return None
        x |= (c & 0x1F) << (5 * k)
        k += 1
        if c & 0x20:  # more 5-bit groups follow
            continue
        if c & 0x10:  # sign bit of the last group
            x |= -1 << (5 * k)
        if len(runs) > 2:  # runs after the second are stored as differences with the run two before
            x += runs[-2]
        runs.append(x)
        x = k = 0
    return runs if k == 0 else None


def segmentation_problem(seg, height: int, width: int) -> str | None:
    """Why `seg` cannot be decoded into a [height, width] mask, or None if it can.

    Polygons: a non-empty list of lists of >= 6 finite numbers (x, y pairs). RLE: {'size': [height,
    width], 'counts': run lengths (a list) or a compressed string}, the runs non-negative and summing to
    height x width, which is what pycocotools' decode needs.
    """
    if isinstance(seg, list):
        if not seg:
            return "polygon list is empty"
        for j, poly in enumerate(seg):
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(map(_is_num, poly))):
                return f"polygon {j} must be an even number (>= 6) of finite coordinates x, y, ..."
        return None
    if not isinstance(seg, dict):
        return f"must be polygons (list) or RLE (dict), got {type(seg).__name__}"
    size, counts = seg.get("size"), seg.get("counts")
    if size != [height, width]:
        return f"RLE size {size!r} is not the image's [height, width] = [{height}, {width}]"
    if isinstance(counts, list):
        runs = counts if all(_is_int(c) for c in counts) else None
    elif isinstance(counts, str):
        runs = rle_string_counts(counts)
    else:
        return f"RLE counts must be a string or a list of integers, got {type(counts).__name__}"
    if runs is None:
        return "RLE counts are malformed (not a COCO RLE string, or not integers)"
    if any(r < 0 for r in runs) or sum(runs) != height * width:
        return f"RLE runs must be >= 0 and sum to height x width = {height * width}, got sum {sum(runs)}"
    return None


def _check_record(path, where: str, record, int_keys: tuple[str, ...]) -> None:
    """`record` (images[k], annotations[k]) must be an object whose `int_keys` hold integers."""
    if not isinstance(record, dict):
        _fail(path, f"{where}: expected an object, got {type(record).__name__}")
    for key in int_keys:
        if not _is_int(record.get(key)):
            _fail(path, f"{where}: '{key}' must be an integer, got {record.get(key)!r}")


def validate_lvis(data, path="<dict>") -> None:
    """Check the parts of the LVIS v1 schema this project reads, content included (finite numbers, boxes
    of non-negative size, decodable segmentations, at least one image and one category); raise
    LVISFormatError on the first problem, naming the file and the record (list index and id).

    Training and evaluation both read their json through this (load_lvis_json)."""
    if not isinstance(data, dict):
        _fail(path, f"expected a json object at the top level, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            _fail(path, f"missing top-level key '{key}' (an LVIS file has images, annotations, categories)")
        if not isinstance(data[key], list):
            _fail(path, f"'{key}' must be a list, got {type(data[key]).__name__}")
    for key in ("images", "categories"):
        if not data[key]:
            _fail(path, f"'{key}' is empty: nothing to train on or evaluate")
    category_ids = set()
    for k, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            _fail(path, f"categories[{k}]: needs an integer 'id' and a string 'name'")
        if cat["id"] in category_ids:
            _fail(path, f"categories[{k}]: duplicate category id {cat['id']}")
        category_ids.add(cat["id"])
    image_ids, sizes = set(), {}
    for k, img in enumerate(data["images"]):
        _check_record(path, f"images[{k}]", img, ("id", "height", "width"))
        if img["height"] < 1 or img["width"] < 1:
            _fail(path, f"images[{k}] (id {img['id']}): height and width must be >= 1, "
                        f"got {img['height']} x {img['width']}")
        if not isinstance(img.get("file_name", img.get("coco_url")), str):
            _fail(path, f"images[{k}] (id {img['id']}): needs a string 'file_name' or 'coco_url'")
        for key in ("neg_category_ids", "not_exhaustive_category_ids"):
            if key in img and not isinstance(img[key], list):
                _fail(path, f"images[{k}] (id {img['id']}): '{key}' must be a list")
        if img["id"] in image_ids:
            _fail(path, f"images[{k}]: duplicate image id {img['id']}")
        image_ids.add(img["id"])
        sizes[img["id"]] = (img["height"], img["width"])
    for k, ann in enumerate(data["annotations"]):
        _check_record(path, f"annotations[{k}]", ann, ("id", "image_id", "category_id"))
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_num(v) for v in bbox)):
            _fail(path, f"annotations[{k}] (id {ann['id']}): 'bbox' must be 4 numbers [x, y, w, h], finite, "
                        f"got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            _fail(path, f"annotations[{k}] (id {ann['id']}): 'bbox' width and height must be >= 0, got {bbox!r}")
        if "area" in ann and not (_is_num(ann["area"]) and ann["area"] >= 0):
            _fail(path, f"annotations[{k}] (id {ann['id']}): 'area' must be a finite number >= 0, got {ann['area']!r}")
        if ann["image_id"] not in image_ids:
            _fail(path, f"annotations[{k}] (id {ann['id']}): image_id {ann['image_id']} is not an image of this file")
        if ann["category_id"] not in category_ids:
            _fail(path, f"annotations[{k}] (id {ann['id']}): category_id {ann['category_id']} "
                        "is not a category of this file")
        seg = ann.get("segmentation")
        problem = segmentation_problem(seg, *sizes[ann["image_id"]]) if seg is not None else None
        if problem:
            _fail(path, f"annotations[{k}] (id {ann['id']}): 'segmentation': {problem}")


def load_lvis_json(path: str | Path) -> dict:
    """Read and validate an LVIS json file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LVIS json file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LVISFormatError(f"{path}: not valid JSON: {err}") from None
    validate_lvis(data, path)
    return data


def image_relpath(record: dict) -> str:
    """File of an image record below the image root: file_name, else the last two parts of coco_url."""
    if "file_name" in record:
        return record["file_name"]
    return "/".join(record["coco_url"].rstrip("/").split("/")[-2:])


def segmentation_to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """Polygons (list), uncompressed RLE (counts list) or compressed RLE (counts str/bytes) -> uint8 [H, W]."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(rle).astype(np.uint8)


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 [H, W, 3]; ImageReadError naming the file if it is missing or unreadable."""
    if not path.is_file():
        raise ImageReadError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot read image: {err}") from None


class LVISDataset(torch.utils.data.Dataset):
    """An LVIS-format json and its images (see the module docstring for the item format).

    json_path:     LVIS v1 json (train or val).
    image_root:    folder the image files are relative to (default: the json's folder).
    transforms:    callable (image, target) -> (image, target), e.g. rog.data.transforms.
    with_masks:    decode instance masks into target['masks'].
    cache_images:  keep decoded images in RAM (uint8) after their first read.
    filter_empty:  drop images without (valid) annotations (training).
    min_box_size:  boxes with width or height below this (pixels) are dropped, with a warning.
    check_files:   check at construction that every image file exists (one error listing the first).
    """

    def __init__(self, json_path: str | Path, image_root: str | Path | None = None,
                 transforms: Callable | None = None, *, with_masks: bool = True, cache_images: bool = False,
                 filter_empty: bool = False, min_box_size: float = 1.0, check_files: bool = True):
        self.json_path = Path(json_path)
        self.image_root = Path(image_root) if image_root is not None else self.json_path.parent
        self.transforms = transforms
        self.with_masks = with_masks
        self.cache_images = cache_images
        data = load_lvis_json(self.json_path)
        self.lvis = data
        self.categories = sorted(data["categories"], key=lambda c: c["id"])
        self.category_ids: list[int] = [c["id"] for c in self.categories]
        self.label_of: dict[int, int] = {cid: k for k, cid in enumerate(self.category_ids)}

        per_image: dict[int, list[dict]] = {img["id"]: [] for img in data["images"]}
        dropped = 0
        for ann in data["annotations"]:
            _, _, w, h = ann["bbox"]
            if w < min_box_size or h < min_box_size:
                dropped += 1
                continue
            per_image[ann["image_id"]].append(ann)
        if dropped:
            warnings.warn(f"{self.json_path}: dropped {dropped} degenerate boxes "
                          f"(width or height below {min_box_size} px)", stacklevel=2)
        images = [img for img in data["images"] if per_image[img["id"]] or not filter_empty]
        self.images: list[dict] = images
        self._annotations = [per_image[img["id"]] for img in images]
        self._cache: dict[int, torch.Tensor] = {}
        if check_files:
            missing = [p for p in (self.image_path(i) for i in range(len(images))) if not p.is_file()]
            if missing:
                raise ImageReadError(f"{missing[0]}: image file not found "
                                     f"({len(missing)} of {len(images)} images of {self.json_path} missing)")

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, index: int) -> Path:
        return self.image_root / image_relpath(self.images[index])

    def load_image(self, index: int) -> torch.Tensor:
        """uint8 [3, H, W], from the cache when cache_images is on."""
        if index in self._cache:
            return self._cache[index]
        record = self.images[index]
        path = self.image_path(index)
        array = read_image(path)
        if array.shape[:2] != (record["height"], record["width"]):
            raise ImageReadError(f"{path}: image is {array.shape[1]}x{array.shape[0]} but {self.json_path} "
                                 f"says {record['width']}x{record['height']}")
        image = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        if self.cache_images:
            self._cache[index] = image
        return image

    def target(self, index: int) -> dict:
        record, anns = self.images[index], self._annotations[index]
        n = len(anns)
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(n, 4)
        boxes[:, 2:] += boxes[:, :2]
        target = {
            "boxes": boxes,
            "labels": torch.tensor([self.label_of[a["category_id"]] for a in anns], dtype=torch.int64),
            "area": torch.tensor([float(a.get("area", 0.0)) for a in anns], dtype=torch.float32),
            "iscrowd": torch.zeros(n, dtype=torch.int64),
            "image_id": torch.tensor(record["id"], dtype=torch.int64),
        }
        if self.with_masks:
            h, w = record["height"], record["width"]
            masks = np.zeros((n, h, w), dtype=np.uint8)
            for k, a in enumerate(anns):
                if a.get("segmentation") is not None:
                    try:
                        masks[k] = segmentation_to_mask(a["segmentation"], h, w)
                    except (ValueError, TypeError, RuntimeError) as err:  # validate_lvis lets none through
                        raise LVISFormatError(f"{self.json_path}: annotation id {a['id']}: segmentation "
                                              f"cannot be decoded: {err}") from None
            target["masks"] = torch.from_numpy(masks)
        return target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image = self.load_image(index).float().div_(255.0)
        target = self.target(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def image_labels(self) -> list[list[int]]:
        """Contiguous labels present in each image (with repeats), e.g. for repeat-factor sampling."""
        return [[self.label_of[a["category_id"]] for a in anns] for anns in self._annotations]

    def category_counts(self) -> CategoryCounts:
        """Training statistics counted from this file's annotations (all images, before box filtering)."""
        return CategoryCounts.from_lvis(self.lvis, self.category_ids)

    def labels_to_category_ids(self, labels: torch.Tensor | Sequence[int]) -> list[int]:
        """Contiguous labels 0..C-1 -> LVIS category ids (for results files)."""
        ids = self.category_ids
        return [ids[int(k)] for k in labels]

    def category_ids_to_labels(self, category_ids: Sequence[int]) -> torch.Tensor:
        return torch.tensor([self.label_of[int(c)] for c in category_ids], dtype=torch.int64)


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict]]:
    """DataLoader collate for detection: lists of images and targets (sizes may differ)."""
    images, targets = zip(*batch)
    return list(images), list(targets)

"""LVISDataset: targets, label mapping, real-LVIS records (coco_url), bad input, transforms."""
from __future__ import annotations

import json

import pytest
import torch

from data_helpers import box_annotation, category, image, tiny_glyph_params, write_lvis
from rog.data import ImageReadError, LVISDataset, LVISFormatError, build_dataset, collate
from rog.data.glyphs import generate
from rog.data.transforms import hflip, resize


@pytest.fixture()
def small(tmp_path):
    images = [image(1), image(2), image(5)]
    anns = [box_annotation(10, 1, 1203, (2, 3, 10, 5)), box_annotation(11, 1, 1, (0, 0, 4, 4)),
            box_annotation(12, 2, 1203, (5, 5, 0, 7))]  # degenerate: width 0
    return write_lvis(tmp_path, images, anns, [category(1203), category(1), category(50)])


def test_targets_labels_and_mapping(small):
    with pytest.warns(UserWarning, match="dropped 1 degenerate box"):
        ds = LVISDataset(small)
    assert ds.category_ids == [1, 50, 1203] and ds.num_classes == 3
    img, t = ds[0]
    assert img.shape == (3, 32, 48) and img.dtype == torch.float32 and 0 <= img.min() <= img.max() <= 1
    assert t["boxes"].tolist() == [[2, 3, 12, 8], [0, 0, 4, 4]]
    assert t["labels"].tolist() == [2, 0]  # contiguous, ids sorted
    assert ds.labels_to_category_ids(t["labels"]) == [1203, 1]
    assert ds.category_ids_to_labels([1203, 50]).tolist() == [2, 1]
    assert t["masks"].shape == (2, 32, 48) and t["masks"].dtype == torch.uint8
    assert t["masks"][0].sum() > 0 and int(t["image_id"]) == 1
    # an image left without boxes keeps an empty target; filter_empty drops it (training)
    _, empty = ds[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,) and empty["masks"].shape == (0, 32, 48)
    with pytest.warns(UserWarning):
        assert [r["id"] for r in LVISDataset(small, filter_empty=True).images] == [1]
    images, targets = collate([ds[0], ds[2]])
    assert len(images) == len(targets) == 2


def test_real_lvis_records_use_coco_url(tmp_path):
    rec = {"id": 391895, "coco_url": "http://images.cocodataset.org/train2017/000000391895.jpg",
           "height": 20, "width": 30, "neg_category_ids": [], "not_exhaustive_category_ids": []}
    coco = tmp_path / "coco"
    write_lvis(coco, [dict(rec, file_name="train2017/000000391895.jpg")], [], [category(1)], draw=True)
    path = tmp_path / "lvis_v1_val.json"
    path.write_text(json.dumps({"images": [rec], "annotations": [box_annotation(1, 391895, 1, (1, 1, 5, 5))],
                                "categories": [category(1)]}))
    ds = LVISDataset(path, coco)
    assert ds.image_path(0) == coco / "train2017" / "000000391895.jpg"
    assert ds[0][0].shape == (3, 20, 30)


@pytest.mark.parametrize("mutate, problem", [
    (lambda d: d.pop("annotations"), "missing top-level key 'annotations'"),
    (lambda d: d.update(images={}), "'images' must be a list"),
    (lambda d: d["images"][0].update(height="32"), "'height' must be an integer"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "'bbox' must be 4 numbers"),
    (lambda d: d["annotations"][0].update(image_id=99), "image_id 99 is not an image of this file"),
    (lambda d: d["annotations"][0].update(category_id=7), "category_id 7 is not a category of this file"),
    (lambda d: d["categories"].append(category(1)), "duplicate category id 1"),
    # content: finite numbers, boxes of non-negative size, decodable segmentations, something to read
    (lambda d: d.update(images=[], annotations=[]), "'images' is empty"),
    (lambda d: d.update(categories=[], annotations=[]), "'categories' is empty"),
    (lambda d: d["images"][0].update(width=0), "images[0] (id 1): height and width must be >= 1"),
    (lambda d: d["annotations"][0].update(bbox=[0, float("nan"), 3, 3]), "annotations[0] (id 1): 'bbox' must be"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, float("inf"), 3]), "annotations[0] (id 1): 'bbox' must be"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, -3, 3]), "annotations[0] (id 1): 'bbox' width and height"),
    (lambda d: d["annotations"][0].update(area=float("nan")), "annotations[0] (id 1): 'area' must be"),
    (lambda d: d["annotations"][0].update(segmentation=[[0, 0, 3, 0, 3]]), "'segmentation': polygon 0 must be"),
    (lambda d: d["annotations"][0].update(segmentation=[[0, 0, 3, 0, 3, float("nan")]]), "polygon 0 must be"),
    (lambda d: d["annotations"][0].update(segmentation=[]), "polygon list is empty"),
    (lambda d: d["annotations"][0].update(segmentation="mask"), "must be polygons (list) or RLE (dict)"),
    (lambda d: d["annotations"][0].update(segmentation={"size": [32, 48], "counts": "!!!"}),
     "annotations[0] (id 1): 'segmentation': RLE counts are malformed"),
    (lambda d: d["annotations"][0].update(segmentation={"size": [32, 48], "counts": "P13"}),
     "RLE runs must be >= 0 and sum to height x width = 1536"),
    (lambda d: d["annotations"][0].update(segmentation={"size": [32, 48], "counts": [1000, 5, 300]}),
     "RLE runs must be >= 0 and sum to height x width = 1536, got sum 1305"),
    (lambda d: d["annotations"][0].update(segmentation={"size": [10, 10], "counts": [100]}),
     "RLE size [10, 10] is not the image's [height, width] = [32, 48]"),
])
def test_not_lvis_is_named(tmp_path, mutate, problem):
    data = {"images": [image(1)], "annotations": [box_annotation(1, 1, 1, (0, 0, 3, 3))], "categories": [category(1)]}
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LVISFormatError) as err:
        LVISDataset(path, check_files=False)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_bad_json_and_missing_or_unreadable_images(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(LVISFormatError, match="broken.json: not valid JSON"):
        LVISDataset(broken)
    path = write_lvis(tmp_path / "a", [image(1), image(2)], [], [category(1)])
    (tmp_path / "a" / "img" / "2.png").unlink()
    with pytest.raises(ImageReadError, match=r"img/2.png: image file not found \(1 of 2"):
        LVISDataset(path)
    ds = LVISDataset(path, check_files=False)
    with pytest.raises(ImageReadError, match="2.png: image file not found"):
        ds[1]
    (tmp_path / "a" / "img" / "2.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="2.png: cannot read image"):
        ds[1]


def test_glyph_dataset_through_params(tmp_path):
    generate(tiny_glyph_params(num_train=6, num_val=2, min_val_images=0), tmp_path)
    params = {"name": "lt_glyphs", "root": str(tmp_path), "train_json": "train.json", "val_json": "val.json", "image_root": ".",
              "cache_images": True, "with_masks": True, "filter_empty_train": True, "min_box_size": 1.0,
              "horizontal_flip": False, "resize_min_size": [], "resize_max_size": 1333}
    train = build_dataset(params, "train")
    assert train.transforms is None and len(train) == 6
    a, ta = train[3]
    b, _ = train[3]
    assert torch.equal(a, b) and 3 in train._cache  # decoded once, kept as uint8
    assert train._cache[3].dtype == torch.uint8
    for k in range(len(ta["boxes"])):  # masks agree with boxes after loading
        ys, xs = torch.nonzero(ta["masks"][k], as_tuple=True)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == ta["boxes"][k].tolist()
    assert train.category_counts().image_count.tolist() == [c["image_count"] for c in train.categories]


def test_flip_and_resize_keep_masks_and_boxes_together():
    img = torch.zeros(3, 10, 20)
    masks = torch.zeros(1, 10, 20, dtype=torch.uint8)
    masks[0, 2:5, 1:4] = 1
    target = {"boxes": torch.tensor([[1.0, 2.0, 4.0, 5.0]]), "masks": masks, "area": torch.tensor([9.0])}
    _, flipped = hflip(img, target)
    ys, xs = torch.nonzero(flipped["masks"][0], as_tuple=True)
    assert flipped["boxes"].tolist() == [[16.0, 2.0, 19.0, 5.0]] == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    big, scaled = resize(img, target, 20, 1000)
    assert big.shape == (3, 20, 40) and scaled["masks"].shape == (1, 20, 40)
    assert scaled["boxes"].tolist() == [[2.0, 4.0, 8.0, 10.0]] and scaled["area"].item() == 36.0
    ys, xs = torch.nonzero(scaled["masks"][0], as_tuple=True)
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [2, 4, 8, 10]


def test_segmentation_forms_decode_to_the_same_mask():
    import numpy as np
    from pycocotools import mask as mask_utils

    from rog.data.lvis_dataset import segmentation_to_mask

    square = np.zeros((6, 8), dtype=np.uint8)
    square[1:4, 2:6] = 1
    rle = mask_utils.encode(np.asfortranarray(square))
    compressed = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    runs, value, flat = [], 0, square.flatten(order="F")
    for v in flat:  # uncompressed RLE: run lengths of 0s and 1s, column-major
        if not runs or v != value:
            runs.append(0)
            value = v
        runs[-1] += 1
    uncompressed = {"size": [6, 8], "counts": ([0] if flat[0] else []) + runs}
    polygon = [[2, 1, 6, 1, 6, 4, 2, 4]]
    for seg in (compressed, uncompressed):
        assert np.array_equal(segmentation_to_mask(seg, 6, 8), square)
    assert segmentation_to_mask(polygon, 6, 8)[1:4, 2:6].all()


def test_build_transforms_from_params():
    from rog.data.transforms import Compose, RandomHorizontalFlip, RandomResize, build_transforms

    lvis = {"name": "lvis", "horizontal_flip": True, "resize_min_size": [640, 800], "resize_max_size": 1333}
    steps = build_transforms(lvis, train=True)
    assert isinstance(steps, Compose) and [type(t) for t in steps.transforms] == [RandomResize, RandomHorizontalFlip]
    assert build_transforms(lvis, train=False) is None
    glyphs = {"name": "lt_glyphs", "horizontal_flip": False, "resize_min_size": [], "resize_max_size": 1333}
    assert build_transforms(glyphs, train=True) is None
    with pytest.raises(ValueError, match="mirrored glyph"):
        build_transforms(dict(glyphs, horizontal_flip=True), train=True)


def test_rle_string_runs_and_validity_agree_with_pycocotools():
    import numpy as np
    from pycocotools import mask as mask_utils

    from rog.data.lvis_dataset import rle_string_counts, segmentation_problem, segmentation_to_mask

    rng = np.random.default_rng(0)
    for trial in range(200):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        mask = np.asfortranarray(rng.random((h, w)) < rng.random())
        if trial % 3 == 0:  # long runs: multi-group numbers and large differences
            mask[:] = False
            mask[rng.integers(0, h):, rng.integers(0, w):] = True
        rle = mask_utils.encode(mask.astype(np.uint8))
        counts = rle["counts"].decode("ascii")
        runs = rle_string_counts(counts)
        flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)  # column-major, first run of zeros
        assert np.array_equal(flat.reshape(w, h).T, mask)
        seg = {"size": [h, w], "counts": counts}
        assert segmentation_problem(seg, h, w) is None
        assert np.array_equal(segmentation_to_mask(seg, h, w), mask)
        if len(counts) > 1:  # cut short or wrong alphabet: refused, never handed to pycocotools
            assert segmentation_problem(dict(seg, counts=counts[:-1] + "~"), h, w)
    polygon = [[1.5, 1, 20.25, 2, 18, 25, 3, 22]]
    assert segmentation_problem(polygon, 32, 48) is None
    assert segmentation_to_mask(polygon, 32, 48).sum() > 300

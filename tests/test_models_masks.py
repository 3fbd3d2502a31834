"""Mask targets and paste (rog.models.masks) against oracles written from the convention, and their
round trip through the project's evaluator on the smoke profile's validation split."""
import pytest
import torch
import torch.nn.functional as F

from rog.config import resolve_run
from rog.data.glyphs import generate
from rog.data.lvis_dataset import LVISDataset
from rog.evaluation.mask_baselines import mean_shape_results, mean_shapes, round_trip_results
from rog.evaluation.metrics import evaluate_all
from rog.models.masks import CHUNK, BatchedPasteTransform, crop_masks, mask_targets, paste_masks


def random_case(n: int, height: int, width: int, m: int = 28, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(n, 1, m, m, generator=g)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([width, height])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([width, height]) * 0.6 + 0.01
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return masks, boxes


def grid_sample_paste(masks: torch.Tensor, boxes: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The convention read literally: pixel centre -> normalised box coordinate -> grid_sample."""
    height, width = shape
    out = []
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.tolist()):
        gx = ((torch.arange(width) + 0.5 - x0) / max(x1 - x0, 1e-6)) * 2 - 1
        gy = ((torch.arange(height) + 0.5 - y0) / max(y1 - y0, 1e-6)) * 2 - 1
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1)[None]  # [1, H, W, (x, y)]
        out.append(F.grid_sample(mask[None], grid.float(), align_corners=False, padding_mode="zeros")[0])
    return torch.stack(out)


@pytest.mark.parametrize("shape", [(128, 128), (97, 150), (40, 33)])
def test_paste_equals_grid_sample_of_the_convention(shape):
    masks, boxes = random_case(CHUNK * 2 + 7, *shape)  # several chunks
    boxes[0] = torch.tensor([5.0, 6.0, 5.2, 6.1])      # a box smaller than a pixel
    boxes[1] = torch.tensor([shape[1] - 0.5, 3.0, float(shape[1]), 9.0])  # a sliver at the right edge
    boxes[2] = torch.tensor([0.0, 0.0, float(shape[1]), float(shape[0])])  # the whole image
    boxes[3] = torch.tensor([7.0, 7.0, 7.0, 12.0])     # zero width: pastes nothing
    ours = paste_masks(masks, boxes, shape)
    reference = grid_sample_paste(masks, boxes, shape)
    assert ours.shape == (len(masks), 1, *shape)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)
    assert ours[3].abs().max() == 0


def test_crop_reads_each_bin_at_its_centre():
    """Boxes under M pixels: bin p's value is the mask's bilinear value at x0 + (p + 0.5) w / M."""
    g = torch.Generator().manual_seed(3)
    masks = (torch.rand(3, 20, 24, generator=g) > 0.5).float()
    boxes = torch.tensor([[2.3, 1.7, 15.9, 17.2], [0.0, 0.0, 24.0, 20.0], [5.5, 4.25, 9.5, 8.75]])
    size = 28
    ours = crop_masks(masks, boxes, size)

    def bilinear(mask, x, y):  # pixel j's value sits at its centre j + 0.5; zero beyond the border
        x, y = x - 0.5, y - 0.5
        x0, y0 = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
        value = 0.0
        for dx, wx in ((0, 1 - (x - x0)), (1, x - x0)):
            for dy, wy in ((0, 1 - (y - y0)), (1, y - y0)):
                xi = min(max(x0 + dx, 0), mask.shape[1] - 1)  # RoIAlign clamps inside [-1, size]
                yi = min(max(y0 + dy, 0), mask.shape[0] - 1)
                value += wx * wy * float(mask[yi, xi])
        return value

    for n, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        for p in range(0, size, 5):
            for q in range(0, size, 3):
                x = x0 + (q + 0.5) * (x1 - x0) / size
                y = y0 + (p + 0.5) * (y1 - y0) / size
                assert ours[n, p, q].item() == pytest.approx(bilinear(masks[n], x, y), abs=1e-5)


def test_mask_targets_read_the_matched_masks():
    masks = torch.zeros(2, 16, 16, dtype=torch.uint8)
    masks[0, :8] = 1
    masks[1, :, :8] = 1
    proposals = torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 3)
    targets = mask_targets(masks, proposals, torch.tensor([1, 0, 1]), 4)
    assert torch.equal(targets[0], targets[2])
    assert torch.equal(targets[0], torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 4))
    assert torch.equal(targets[1], targets[0].T)


def test_transform_postprocess_resizes_boxes_then_pastes():
    masks, boxes = random_case(20, 64, 80, seed=1)
    transform = BatchedPasteTransform(64, 80, [0.5] * 3, [0.25] * 3).eval()
    result = transform.postprocess([{"boxes": boxes.clone(), "masks": masks}], [(64, 80)], [(128, 160)])[0]
    assert torch.allclose(result["boxes"], boxes * 2)
    assert torch.allclose(result["masks"], grid_sample_paste(masks, boxes * 2, (128, 160)), atol=1e-5)


@pytest.fixture(scope="module")
def smoke_val(tmp_path_factory):
    """The smoke profile's LT-Glyphs as params.yaml renders it."""
    folder = tmp_path_factory.mktemp("smoke_glyphs")
    generate(resolve_run("params.yaml", "smoke")["dataset"]["glyphs"], folder)
    return folder


def test_ground_truth_round_trip_scores_segm_ap_99_on_smoke(smoke_val):
    val = LVISDataset(smoke_val / "val.json")
    records = round_trip_results(val)
    assert len(records) == sum(len(val.target(i)["boxes"]) for i in range(len(val)))
    metrics = evaluate_all(val.json_path, [{k: v for k, v in r.items() if k != "segmentation"} for r in records],
                           records, max_dets_list=[300], train_image_counts=smoke_val / "train.json")
    assert metrics["segm"]["metrics"]["AP"] >= 0.99


def test_mean_shape_baseline_pastes_each_class_mean(smoke_val):
    train = LVISDataset(smoke_val / "train.json")
    shapes = mean_shapes(train, size=8)
    assert shapes.shape == (train.num_classes, 8, 8)
    target = train.target(0)
    label = int(target["labels"][0])
    mine = [crop_masks(train.target(i)["masks"], train.target(i)["boxes"], 8)[train.target(i)["labels"] == label]
            for i in range(len(train))]
    assert torch.allclose(shapes[label], torch.cat(mine).mean(0), atol=1e-6)
    box = target["boxes"][0]
    detection = {"image_id": train.images[0]["id"], "category_id": train.category_ids[label],
                 "bbox": [*box[:2].tolist(), *(box[2:] - box[:2]).tolist()], "score": 0.5}
    records = mean_shape_results(shapes, [detection], train)
    assert len(records) == 1 and records[0]["score"] == 0.5 and "segmentation" in records[0]

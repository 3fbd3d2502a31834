"""The batched mask paste against torchvision's one-mask-at-a-time paste_masks_in_image."""
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from rog.models.mask_paste import CHUNK, BatchedPasteTransform, paste_masks


def random_case(n: int, height: int, width: int, m: int = 28, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.rand(n, 1, m, m, generator=g)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([width, height])
    wh = torch.rand(n, 2, generator=g) * torch.tensor([width, height]) * 0.6 + 0.01
    boxes = torch.cat([xy, xy + wh], 1)  # clipped to the image as detections are (the 1-pixel
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)  # expansion of the paste still leaves it)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return masks, boxes


@pytest.mark.parametrize("shape", [(128, 128), (97, 150), (40, 33)])
def test_paste_equals_torchvision(shape):
    masks, boxes = random_case(CHUNK * 2 + 7, *shape)  # several chunks
    boxes[0] = torch.tensor([5.0, 6.0, 5.2, 6.1])      # tiny box (width rounds to 0, clamped to 1)
    boxes[1] = torch.tensor([shape[1] - 0.5, 3.0, float(shape[1]), 9.0])  # a sliver at the right edge
    boxes[2] = torch.tensor([0.0, 0.0, shape[1] - 1.0, shape[0] - 1.0])  # the whole image
    ours = paste_masks(masks, boxes, shape)
    reference = paste_masks_in_image(masks, boxes, shape)
    assert ours.shape == reference.shape == (len(masks), 1, *shape)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)
    assert ((ours > 0.5) == (reference > 0.5)).float().mean() > 0.99999


def test_paste_of_no_detections():
    out = paste_masks(torch.zeros(0, 1, 28, 28), torch.zeros(0, 4), (50, 60))
    assert out.shape == (0, 1, 50, 60)


def test_transform_postprocess_pastes_like_torchvision():
    masks, boxes = random_case(20, 64, 80, seed=1)
    transform = BatchedPasteTransform(64, 80, [0.5] * 3, [0.25] * 3).eval()
    result = transform.postprocess([{"boxes": boxes.clone(), "masks": masks}], [(64, 80)], [(128, 160)])[0]
    expected_boxes = boxes * 2
    assert torch.allclose(result["boxes"], expected_boxes)
    assert torch.allclose(result["masks"], paste_masks_in_image(masks, expected_boxes, (128, 160)), atol=1e-5)

"""Pasting Mask R-CNN's M x M mask probabilities into the image, all detections of an image at once.

torchvision's `paste_masks_in_image` pastes one mask at a time (a Python loop over detections, one
`F.interpolate` each): at K = 300 detections per image it is the largest cost of inference on small
images. `paste_masks` computes the same thing with two batched matrix products per chunk of masks:
the mask padded by one pixel, its box scaled to match and truncated to integers (torchvision's
`expand_masks` and `expand_boxes`), then a bilinear resize to the integer box size with
align_corners=False, placed at the box and clipped to the image, written as [H, S] and [S, W]
interpolation matrices (two non-zero weights a row, zero rows outside the box). Columns are resized
first, then rows, as PyTorch's bilinear kernel does; both agree to float32 rounding (1e-5 on
probabilities; tests/test_models_mask_paste.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

CHUNK = 64  # masks per batched step: bounds the [chunk, H, W] working memory on large images


def _interpolation_matrix(start: torch.Tensor, end: torch.Tensor, size_in: int, size_out: int) -> torch.Tensor:
    """Bilinear resize along one axis as a matrix, for every box: [N, size_out, size_in].

    start, end [N] integer box edges (inclusive end). Row p holds the weights of image pixel p on the
    padded mask's pixels (two non-zeros), zero when p lies outside the box.
    """
    length = (end - start + 1).clamp(min=1).to(torch.float32)  # torchvision: max(int(x1 - x0 + 1), 1)
    pixel = torch.arange(size_out, device=start.device)
    offset = pixel[None, :] - start[:, None]  # [N, size_out] position inside the resized mask
    inside = ((offset >= 0) & (pixel[None, :] <= end[:, None])).to(torch.float32)
    scale = size_in / length  # align_corners=False: source = scale * (dst + 0.5) - 0.5, clamped at 0
    source = (scale[:, None] * (offset.to(torch.float32) + 0.5) - 0.5).clamp(min=0)
    i0 = source.floor().long().clamp(max=size_in - 1)
    i1 = (i0 + 1).clamp(max=size_in - 1)
    w1 = source - i0.to(torch.float32)
    matrix = torch.zeros(start.shape[0], size_out, size_in, device=start.device)
    matrix.scatter_add_(2, i0[..., None], ((1 - w1) * inside)[..., None])
    matrix.scatter_add_(2, i1[..., None], (w1 * inside)[..., None])
    return matrix


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_shape: tuple[int, int],
                padding: int = 1) -> torch.Tensor:
    """masks [N, 1, M, M] probabilities, boxes [N, 4] xyxy in the image -> [N, 1, H, W] pasted masks.

    Same values as torchvision's `paste_masks_in_image(masks, boxes, image_shape, padding)`.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    n = masks.shape[0]
    if n == 0:
        return masks.new_zeros((0, 1, height, width))
    m = masks.shape[-1]
    padded = F.pad(masks[:, 0], (padding,) * 4)  # [N, M + 2p, M + 2p]
    scale = (m + 2 * padding) / m
    center_x, center_y = (boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5
    half_w, half_h = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale, (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    expanded = torch.stack([center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h], 1)
    x0, y0, x1, y1 = expanded.to(torch.int64).unbind(1)  # truncation toward zero, as torchvision
    size = padded.shape[-1]
    out = masks.new_zeros((n, 1, height, width))
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        columns = _interpolation_matrix(x0[lo:hi], x1[lo:hi], size, width)  # [c, W, S]
        rows = _interpolation_matrix(y0[lo:hi], y1[lo:hi], size, height)      # [c, H, S]
        # columns first, then rows, as PyTorch's bilinear kernel: [c, H, S] @ ([c, S, S] @ [c, S, W])
        out[lo:hi, 0] = torch.bmm(rows, torch.bmm(padded[lo:hi], columns.transpose(1, 2)))
    return out


class BatchedPasteTransform(GeneralizedRCNNTransform):
    """torchvision's GeneralizedRCNNTransform with `paste_masks` in its postprocess."""

    def postprocess(self, result: list[dict], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[dict]:
        if self.training:
            return result
        for pred, shape, original in zip(result, image_shapes, original_image_sizes):
            pred["boxes"] = resize_boxes(pred["boxes"], shape, original)
            if "masks" in pred:
                pred["masks"] = paste_masks(pred["masks"], pred["boxes"], original)
        return result

"""Mask R-CNN's M x M masks and the image: one convention for training targets and for the paste.

The convention (detectron2's): a box [x0, x1) of width w is cut into M bins, bin p covering
[x0 + p * w / M, x0 + (p + 1) * w / M) in continuous image coordinates, where pixel j covers [j, j + 1)
and is sampled at its centre j + 0.5. Likewise for y.

- `crop_masks` (training targets): each bin takes the image mask's bilinear value at the bin's centre,
  i.e. RoIAlign with aligned=True (the half-pixel shift maps continuous coordinates onto pixel
  centres) and one sample per bin side for boxes under M pixels.
- `paste_masks` (inference): the exact inverse reading. Image pixel x takes the mask's bilinear value at
  mask coordinate u = (x + 0.5 - x0) * M / w - 0.5 (bin p's centre is u = p), zero outside the M
  bins, as `F.grid_sample(align_corners=False, padding_mode="zeros")`.

torchvision's own pair loses half a pixel: its targets come from RoIAlign with aligned=False and its
paste widens the box by (M + 2) / M and truncates it to integer pixels. On LT-Glyphs (strokes 2-3 px
wide) that costs most of a mask's IoU: ground-truth masks round-tripped through it score segm AP 42,
through this pair ~100 (`benchmarks/mask_round_trip.py`).

The paste runs for all detections of an image at once: the bilinear resize along each axis is an
interpolation matrix (two non-zeros per row), so pasting N masks is two batched matrix products
[N, H, M] @ [N, M, M] @ [N, M, W] per chunk instead of one `grid_sample` per mask.
"""
from __future__ import annotations

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import roi_align

CHUNK = 64  # masks per batched step: bounds the [chunk, H, W] working memory on large images


def crop_masks(masks: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Training targets: masks [N, H, W] (0/1, any dtype), boxes [N, 4] xyxy -> [N, size, size] in [0, 1].

    Row n is masks[n] read in boxes[n] by the convention of the module docstring.
    """
    if boxes.shape[0] == 0:
        return masks.new_zeros((0, size, size), dtype=torch.float32)
    rois = torch.cat([torch.arange(boxes.shape[0], device=boxes.device, dtype=boxes.dtype)[:, None], boxes], 1)
    return roi_align(masks[:, None].to(boxes.dtype), rois, (size, size), spatial_scale=1.0,
                     sampling_ratio=0, aligned=True)[:, 0]


def mask_targets(gt_masks: torch.Tensor, proposals: torch.Tensor, matched: torch.Tensor, size: int) -> torch.Tensor:
    """One image's targets: gt_masks [G, H, W], proposals [P, 4], matched [P] indices into G -> [P, size, size].

    Each proposal's matched ground-truth mask read in the proposal's box (torchvision's
    `project_masks_on_boxes`, with this module's convention). Only the matched masks are read.
    """
    return crop_masks(gt_masks[matched], proposals, size)


def _interpolation_matrix(start: torch.Tensor, length: torch.Tensor, bins: int, size_out: int) -> torch.Tensor:
    """The paste along one axis as a matrix, for every box: [N, size_out, bins].

    start, length [N] box start and extent (pixels, continuous). Row x holds the weights of image
    pixel x on the mask's bins: bilinear at u = (x + 0.5 - start) * bins / length - 0.5, bins outside
    0..bins-1 count as zero (so rows far outside the box are all zero).
    """
    pixel = torch.arange(size_out, device=start.device, dtype=torch.float32) + 0.5
    scale = bins / length.to(torch.float32).clamp(min=1e-6)  # degenerate boxes paste nothing
    u = (pixel[None, :] - start[:, None].to(torch.float32)) * scale[:, None] - 0.5  # [N, size_out]
    u = u.clamp(-2.0, bins + 1.0)  # far-away pixels: both neighbours out of range, weight 0
    low = u.floor()
    w_high = u - low
    low = low.long()
    matrix = torch.zeros(start.shape[0], size_out, bins + 2, device=start.device)  # bins + 2 columns:
    # column k + 1 holds bin k; columns 0 and bins + 1 are the zero padding, dropped below
    matrix.scatter_add_(2, (low + 1).clamp(0, bins + 1)[..., None], (1 - w_high)[..., None])
    matrix.scatter_add_(2, (low + 2).clamp(0, bins + 1)[..., None], w_high[..., None])
    return matrix[..., 1:bins + 1]


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """masks [N, 1, M, M] probabilities, boxes [N, 4] xyxy in the image -> [N, 1, H, W] pasted masks.

    The inverse of `crop_masks` (module docstring); equal to `F.grid_sample` of each mask on the
    pixel centres' normalised box coordinates (align_corners=False, zero padding).
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    n = masks.shape[0]
    if n == 0:
        return masks.new_zeros((0, 1, height, width))
    m_rows, m_cols = masks.shape[-2:]
    x0, y0, x1, y1 = boxes.unbind(1)
    out = masks.new_zeros((n, 1, height, width))
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        columns = _interpolation_matrix(x0[lo:hi], (x1 - x0)[lo:hi], m_cols, width)  # [c, W, M]
        rows = _interpolation_matrix(y0[lo:hi], (y1 - y0)[lo:hi], m_rows, height)    # [c, H, M]
        out[lo:hi, 0] = torch.bmm(rows, torch.bmm(masks[lo:hi, 0].float(), columns.transpose(1, 2)))
    return out


class BatchedPasteTransform(GeneralizedRCNNTransform):
    """torchvision's GeneralizedRCNNTransform with this module's `paste_masks` in its postprocess.
    A prediction's masks [D', 1, M, M] belong to its first D' boxes (D' < D with a mask budget)."""

    def postprocess(self, result: list[dict], image_shapes: list[tuple[int, int]],
                    original_image_sizes: list[tuple[int, int]]) -> list[dict]:
        if self.training:
            return result
        for pred, shape, original in zip(result, image_shapes, original_image_sizes):
            pred["boxes"] = resize_boxes(pred["boxes"], shape, original)
            if "masks" in pred:
                pred["masks"] = paste_masks(pred["masks"], pred["boxes"][:len(pred["masks"])], original)
        return result

"""RoIAlign as two small matrix products: the same numbers as torchvision's, a much faster CPU backward.

With a fixed sampling ratio g, RoIAlign (aligned=False) averages g x g bilinear samples per output
bin. A sample's bilinear weight is the product of a weight over rows (its y) and one over columns
(its x), and a sample outside the map has zero weight through whichever coordinate is out, so

    out[r, c] = Ay[r] @ F[b(r), c] @ Ax[r]^T        Ay [R, PH, H], Ax [R, PW, W]

where Ay[r, p, h] = (1/g) sum over the g samples of bin row p of their bilinear weight on row h (and Ax
likewise). torchvision's CPU backward loops over RoIs x channels x bins x samples, recomputing the
weights for every channel, and was half of a training step on 128-pixel images; here both directions
are batched matrix products. Memory grows as R x PH x W x C per image, fine for small feature maps (use
torchvision's kernel on GPUs and for large images: `roi.separable_align: false`).
"""
from __future__ import annotations

import torch
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


def axis_weights(start: torch.Tensor, length: torch.Tensor, bins: int, grid: int, size: int) -> torch.Tensor:
    """[R] RoI starts and lengths along one axis (feature-map units) -> [R, bins, size] weights.

    Mirrors torchvision's bilinear_interpolate (roi_align_kernel.cpp): samples at
    start + (p + (i + 0.5) / grid) * length / bins; below -1 or above `size`: weight 0; clamped at 0;
    a sample at or past the last row/column uses that row alone.
    """
    r = start.shape[0]
    steps = (torch.arange(bins, device=start.device, dtype=start.dtype).view(bins, 1)
             + (torch.arange(grid, device=start.device, dtype=start.dtype) + 0.5).view(1, grid) / grid)
    pos = start.view(r, 1, 1) + steps.view(1, bins, grid) * (length / bins).view(r, 1, 1)  # [R, bins, grid]
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    pos = torch.where(at_end, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    w_low = torch.where(valid, 1 - frac, torch.zeros_like(frac)) / grid
    w_high = torch.where(valid, frac, torch.zeros_like(frac)) / grid
    weights = torch.zeros(r, bins, size, device=start.device, dtype=start.dtype)
    weights.scatter_add_(2, low, w_low)
    weights.scatter_add_(2, high, w_high)
    return weights


def separable_roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: tuple[int, int],
                        spatial_scale: float, sampling_ratio: int) -> torch.Tensor:
    """torchvision.ops.roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned=False).

    features [B, C, H, W], rois [R, 5] (batch index, x1, y1, x2, y2 in image coordinates)
    -> [R, C, PH, PW]. sampling_ratio must be > 0 (the adaptive ratio varies per RoI).
    """
    if sampling_ratio <= 0:
        raise ValueError("separable_roi_align needs a fixed sampling_ratio > 0")
    ph, pw = output_size
    num_images, channels, height, width = features.shape
    boxes = rois[:, 1:].detach().to(features.dtype) * spatial_scale
    x1, y1, x2, y2 = boxes.unbind(1)
    ay = axis_weights(y1, (y2 - y1).clamp(min=1.0), ph, sampling_ratio, height)  # [R, PH, H]
    ax = axis_weights(x1, (x2 - x1).clamp(min=1.0), pw, sampling_ratio, width)   # [R, PW, W]
    # channels last, so that both products are plain (batched) matrix products without copies
    flat = features.permute(0, 2, 3, 1).reshape(num_images, height, width * channels)
    batch = rois[:, 0].long()
    parts, order = [], []
    for b in batch.unique().tolist():
        idx = torch.where(batch == b)[0]
        rows = (ay[idx].reshape(-1, height) @ flat[b]).view(len(idx), ph, width, channels)
        parts.append(torch.matmul(ax[idx].unsqueeze(1), rows))  # [r, 1, PW, W] @ [r, PH, W, C]
        order.append(idx)
    if not parts:
        return features.new_zeros(0, channels, ph, pw)
    out = torch.cat(parts)  # [R, PH, PW, C] in the order of `order`
    order = torch.cat(order)
    if not torch.equal(order, torch.arange(len(order), device=order.device)):  # RoIs not grouped by image
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        out = out[inverse]
    return out.permute(0, 3, 1, 2).contiguous()


class SeparableMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's MultiScaleRoIAlign (same level mapping) with `separable_roi_align` on each level."""

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        x_filtered = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(x_filtered, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        levels = self.map_levels(boxes) if len(x_filtered) > 1 else torch.zeros(len(rois), dtype=torch.long)
        first = x_filtered[0]
        result = first.new_zeros((rois.shape[0], first.shape[1]) + tuple(self.output_size))
        for level, (feature, scale) in enumerate(zip(x_filtered, self.scales)):
            idx = torch.where(levels.to(rois.device) == level)[0]
            if len(idx):
                result[idx] = separable_roi_align(feature, rois[idx], tuple(self.output_size), scale,
                                                  self.sampling_ratio)
        return result

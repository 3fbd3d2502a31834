"""Batched mask pasting (rog.models.mask_paste) against torchvision's per-mask paste_masks_in_image.

    python benchmarks/mask_paste.py [--masks 300] [--size 128] [--repeat 5]

Same masks and boxes for both, in this one process, 1 thread: median milliseconds per image, the
ratio, and the largest absolute difference of the pasted probabilities.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image

from rog.models.mask_paste import paste_masks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=300, help="detections per image (K)")
    parser.add_argument("--size", type=int, default=128, help="image height and width")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(args.masks, 1, 28, 28, generator=g)
    xy = torch.rand(args.masks, 2, generator=g) * args.size
    boxes = torch.cat([xy, xy + torch.rand(args.masks, 2, generator=g) * args.size * 0.6 + 0.01], 1).clamp(0, args.size)
    shape = (args.size, args.size)
    times = {}
    for name, fn in (("ours", paste_masks), ("torchvision", paste_masks_in_image)):
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn(masks, boxes, shape)
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    diff = (paste_masks(masks, boxes, shape) - paste_masks_in_image(masks, boxes, shape)).abs().max().item()
    print(f"{args.masks} masks into {args.size}x{args.size}, 1 thread: ours {1000 * times['ours']:.1f} ms, "
          f"torchvision {1000 * times['torchvision']:.1f} ms, {times['torchvision'] / times['ours']:.1f}x; "
          f"max |difference| {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

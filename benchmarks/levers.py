"""Cost levers of the default regime, measured side by side: CPU seconds per training step and per image
of inference for the baseline and for each variant (one parameter change each), same run, same batches.

    python benchmarks/levers.py [--iterations 10] [--images 256] [--val-images 64]
        [--variant "NAME: key=value [key=value ...]" ...]

Without --variant it measures the levers listed in VARIANTS. Each detector is built from seed 0 on
the default profile plus the variant's overrides; training steps are interleaved (baseline, variant
1, variant 2, ..., baseline, ...) so that load from other processes hits all alike, and CPU time
(process_time, one thread) is reported, which other processes' load barely moves. Inference runs each
model in eval mode over the same val batches (untrained weights give as many detections as K allows
once the score threshold is 0, so the mask branch runs at full K: its worst case, as in early
training). Reports medians and each variant's ratio to the baseline.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rog.config import resolve_run  # noqa: E402
from rog.data.build import build_dataset  # noqa: E402
from rog.data.glyphs import generate  # noqa: E402
from rog.data.lvis_dataset import collate  # noqa: E402
from rog.models.builder import build_detector  # noqa: E402

VARIANTS = [
    "roi 32: model.roi.batch_size_per_image=32",
    "rpn post-NMS 250: model.rpn.post_nms_top_n_train=250",
    "mask head 32x2: model.roi.mask_head_layers=2",
    "mask stride 4: model.roi.mask_features=stride4",
    "box FC 256: model.roi.representation_size=256",
    "FPN 64 ch: model.backbone.fpn_channels=64",
    "test K 100: model.test.detections_per_img=100",
    "test RPN 100: model.rpn.post_nms_top_n_test=100",
]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'NAME: a=1 b=2' -> ('NAME', ['a=1', 'b=2'])."""
    if ":" not in text:
        raise SystemExit(f"--variant '{text}': expected 'NAME: key=value [key=value ...]'")
    name, rest = text.split(":", 1)
    overrides = rest.split()
    if not overrides or not all("=" in o for o in overrides):
        raise SystemExit(f"--variant '{text}': expected key=value overrides after the name")
    return name.strip(), overrides


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="measured training steps per model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=256, help="rendered training images")
    parser.add_argument("--val-images", type=int, default=64, help="images of the inference timing")
    parser.add_argument("--variant", action="append", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = [("baseline", [])] + [parse_variant(v) for v in (args.variant or VARIANTS)]

    base = resolve_run("params.yaml", "default")
    with tempfile.TemporaryDirectory() as tmp:
        glyphs = dict(base["dataset"]["glyphs"], num_train=args.images, num_val=args.val_images, min_val_images=0)
        generate(glyphs, tmp)
        train_set = build_dataset(dict(base["dataset"], root=tmp), "train")
        val_set = build_dataset(dict(base["dataset"], root=tmp), "val")
        counts = train_set.category_counts()
        batches = [collate([train_set[(s * args.batch_size + k) % len(train_set)] for k in range(args.batch_size)])
                   for s in range(args.iterations + 2)]
        val_batches = [collate([val_set[i] for i in range(s, min(s + args.batch_size, len(val_set)))])
                       for s in range(0, len(val_set), args.batch_size)]
    num_val = sum(len(images) for images, _ in val_batches)

    models = {}
    for name, overrides in variants:
        torch.manual_seed(0)
        # score threshold 0: untrained scores are low, so this forces the full K through the mask branch
        params = resolve_run("params.yaml", "default", overrides=["model.test.score_thresh=0.0", *overrides])
        model = build_detector(params["model"], train_set.num_classes, counts).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
        models[name] = (model, opt)

    step_cpu = {name: [] for name in models}
    torch.manual_seed(1)
    for i, (images, targets) in enumerate(batches):
        for name, (model, opt) in models.items():
            rng = torch.get_rng_state()
            start = time.process_time()
            losses = model(images, targets)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
            if i >= 2:  # warm-up
                step_cpu[name].append(time.process_time() - start)
            torch.set_rng_state(rng)  # every model draws the same RoI samples

    infer_cpu = {name: 0.0 for name in models}
    dets = {name: 0 for name in models}
    with torch.no_grad():
        for name, (model, _) in models.items():
            model.eval()
        for images, _ in val_batches:
            for name, (model, _) in models.items():
                start = time.process_time()
                out = model(images)
                infer_cpu[name] += time.process_time() - start
                dets[name] += sum(len(o["boxes"]) for o in out)

    base_step = statistics.median(step_cpu["baseline"])
    base_infer = infer_cpu["baseline"] / num_val
    print(f"levers: {args.iterations} training steps of batch {args.batch_size} per model (median CPU s, 1 thread), "
          f"inference over {num_val} val images (CPU s per image, score threshold 0)")
    print(f"  {'variant':<22} {'step s':>7} {'ratio':>6}   {'infer s/img':>11} {'ratio':>6} {'dets/img':>8}")
    for name in models:
        step = statistics.median(step_cpu[name])
        infer = infer_cpu[name] / num_val
        print(f"  {name:<22} {step:7.3f} {step / base_step:6.2f}   {infer:11.4f} {infer / base_infer:6.2f} "
              f"{dets[name] / num_val:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

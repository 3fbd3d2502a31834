"""Seconds per training iteration: sigmoid CE alone and with GAP, same run, same data, 1 thread.

    python benchmarks/train_step.py [--iterations 12] [--batch-size 8] [--profile-ops] [--set k=v ...]

Renders a small LT-Glyphs training set with the default profile's glyph params (256 images) into a
temporary folder, builds both detectors from the same seed and feeds them the same batches, steps
interleaved (A, B, A, B, ...) so that load from other processes hits both alike. Reports the median
seconds per iteration of each, GAP's overhead, and the time spent inside GAPLoss itself (forward and
backward), which is the overhead that does not depend on the machine's noise.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--profile-ops", action="store_true", help="print torch.profiler's top operators")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    params = resolve_run("params.yaml", "default", overrides=args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        glyphs = dict(params["dataset"]["glyphs"], num_train=args.images, num_val=1, min_val_images=0)
        generate(glyphs, tmp)
        dataset = build_dataset(dict(params["dataset"], root=tmp), "train")
        c = dataset.num_classes
        counts = dataset.category_counts()
        batches = []
        for start in range(0, args.iterations + 2):
            idx = [(start * args.batch_size + k) % len(dataset) for k in range(args.batch_size)]
            batches.append(collate([dataset[i] for i in idx]))

    models = {}
    for name, gap in (("sigmoid CE", False), ("sigmoid CE + GAP", True)):
        torch.manual_seed(0)
        p = resolve_run("params.yaml", "default", overrides=args.overrides + [f"model.ranking.name={'gap' if gap else 'null'}"])
        model = build_detector(p["model"], c, counts).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
        models[name] = (model, opt)

    gap_model = models["sigmoid CE + GAP"][0]
    gap_seconds = [0.0]
    gap = gap_model.roi_heads.ranking
    original_forward = gap.forward

    def timed_forward(logits, labels):
        t = time.perf_counter()
        out = original_forward(logits, labels)
        gap_seconds[0] += time.perf_counter() - t
        return out

    gap.forward = timed_forward  # GAP's gradient is computed in its forward (error-driven update)

    times = {name: [] for name in models}
    cpu = {name: [] for name in models}
    torch.manual_seed(1)
    for i, (images, targets) in enumerate(batches):
        for name, (model, opt) in models.items():
            rng = torch.get_rng_state()
            start, start_cpu = time.perf_counter(), time.process_time()
            losses = model(images, targets)
            opt.zero_grad()
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if i >= 2:  # warm-up
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
            torch.set_rng_state(rng)  # both models draw the same RoI samples
        if i == 1:
            gap_seconds[0] = 0.0

    base, with_gap = (statistics.median(times[n]) for n in models)
    base_cpu, with_gap_cpu = (statistics.median(cpu[n]) for n in models)
    inside = gap_seconds[0] / len(times["sigmoid CE + GAP"])
    print(f"train step, batch {args.batch_size}, {params['model']['min_size']}-px LT-Glyphs, C = {c}, "
          f"1 thread, {len(times['sigmoid CE'])} iterations each (median; CPU time is robust to other load)")
    print(f"  sigmoid CE        {base:.3f} s/iteration wall, {base_cpu:.3f} s CPU")
    print(f"  sigmoid CE + GAP  {with_gap:.3f} s/iteration wall, {with_gap_cpu:.3f} s CPU   "
          f"overhead {100 * (with_gap / base - 1):+.1f} % wall, {100 * (with_gap_cpu / base_cpu - 1):+.1f} % CPU")
    print(f"  inside GAPLoss    {inside * 1000:.1f} ms/iteration = {100 * inside / base:.1f} % of a step")

    if args.profile_ops:
        from torch.profiler import profile
        model, opt = models["sigmoid CE + GAP"]
        with profile() as prof:
            for images, targets in batches[:3]:
                losses = model(images, targets)
                opt.zero_grad()
                sum(losses.values()).backward()
                opt.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

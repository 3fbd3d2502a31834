"""Forward+backward time of every box-classification objective, relative to sigmoid CE in the same run.

    python benchmarks/objectives.py [--rois 2048] [--repeats 15] [--threads 1] [--device cpu]

An LVIS-sized batch: R RoIs x 1203 classes (plus each objective's extra columns), 25 % positives over
~40 classes, float32 logits. Counts are synthetic but LVIS-shaped (337 rare, 461 common, 405 frequent
classes over 99,388 images), since the real ones need lvis_v1_train.json. Each objective runs
`loss` + backward twice to warm up, then `repeats` times, the objectives taking turns within each
round so that a change in the machine's load hits all of them alike; the median is reported,
together with the time of `scores` (inference). One thread by default (torch.set_num_threads), so
that the ratios do not depend on how busy the machine's other cores are.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rog.losses.counts import CategoryCounts  # noqa: E402
from rog.losses.objectives import OBJECTIVES, build_objective  # noqa: E402

NUM_CLASSES = 1203
BASELINE = "sigmoid_ce"


def lvis_like_counts(seed: int = 0) -> CategoryCounts:
    """Image counts in LVIS v1's bins (r: 1-10, c: 11-100, f: 101-~50k); instances ~3 per image."""
    g = torch.Generator().manual_seed(seed)
    rare = torch.randint(1, 11, (337,), generator=g)
    common = torch.randint(11, 101, (461,), generator=g)
    frequent = (101 * torch.exp(torch.rand(405, generator=g) * 6)).long()   # log-uniform up to ~40k
    image_count = torch.cat([rare, common, frequent])[torch.randperm(NUM_CLASSES, generator=g)]
    instance_count = image_count * torch.randint(1, 6, (NUM_CLASSES,), generator=g)
    frequency = tuple("r" if n <= 10 else "c" if n <= 100 else "f" for n in image_count.tolist())
    return CategoryCounts(instance_count, image_count, 99_388, frequency)


def lvis_like_batch(rows: int, columns: int, seed: int = 0, classes_in_batch: int = 40):
    """[R, columns] float32 logits and [R] labels in 0..C: 25 % positives over `classes_in_batch` classes."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, columns, generator=g) * 1.5 - 4.0
    labels = torch.full((rows,), NUM_CLASSES)
    num_pos = rows // 4
    batch_classes = torch.randperm(NUM_CLASSES, generator=g)[:classes_in_batch]
    pos_labels = batch_classes[torch.randint(0, classes_in_batch, (num_pos,), generator=g)]
    pos_rows = torch.randperm(rows, generator=g)[:num_pos]
    labels[pos_rows] = pos_labels
    return logits, labels


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def steps(name: str, counts: CategoryCounts, rows: int, device: str):
    """(columns, train step, inference step) of objective `name` on its own LVIS-like batch."""
    objective = build_objective(name, NUM_CLASSES, counts).to(device)
    logits, labels = lvis_like_batch(rows, objective.num_outputs)
    logits, labels = logits.to(device), labels.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def train_step():
        z = logits.clone().requires_grad_(True)
        sum(objective.loss(z, labels).values()).backward()
        sync()

    def inference():
        with torch.no_grad():
            objective.scores(logits)
        sync()

    return objective.num_outputs, train_step, inference


def measure(counts: CategoryCounts, rows: int, repeats: int, device: str, warmup: int = 2) -> dict:
    """{name: (columns, median train ms, median scores ms)}, the objectives interleaved in each round."""
    setups = {name: steps(name, counts, rows, device) for name in OBJECTIVES}
    train = {name: [] for name in setups}
    score = {name: [] for name in setups}
    for round_ in range(warmup + repeats):
        for name, (_, train_step, inference) in setups.items():
            t, s = timed_ms(train_step), timed_ms(inference)
            if round_ >= warmup:
                train[name].append(t)
                score[name].append(s)
    return {name: (setups[name][0], statistics.median(train[name]), statistics.median(score[name]))
            for name in setups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rois", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    counts = lvis_like_counts()

    results = measure(counts, args.rois, args.repeats, args.device)
    base = results[BASELINE][1]
    print(f"{args.rois} RoIs x {NUM_CLASSES} classes, {args.device}, {args.threads} thread(s), "
          f"median of {args.repeats} (torch {torch.__version__})")
    ratio = f"x {BASELINE}"
    print(f"| objective  | columns | fwd+bwd ms | {ratio} | scores ms |")
    print(f"|------------|---------|------------|{'-' * (len(ratio) + 2)}|-----------|")
    for name, (columns, train_ms, score_ms) in results.items():
        print(f"| {name:<10} | {columns:>7} | {train_ms:>10.1f} | {train_ms / base:>{len(ratio)}.2f} | "
              f"{score_ms:>9.1f} |")


if __name__ == "__main__":
    main()

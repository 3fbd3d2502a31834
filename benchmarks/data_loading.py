"""LT-Glyphs training with the DataLoader (0 and 2 workers) against the old synchronous loading, one run.

    python benchmarks/data_loading.py [--images 512] [--root out/lt_glyphs] [--rounds 3] [--block 10]
                                      [--batch-size 8] [--threads 1] [--set k=v ...]

Three ways of feeding the same default-profile detector the same sampler's batches:

    sync       the loop before the DataLoader: `collate([dataset[i] for i in batch])` in the loop
    loader-0   rog.data.loader.training_loader, workers=0 (decoding in the training process)
    loader-2   the same with 2 worker processes

Part 1 times data loading alone (fresh datasets, so image caches start cold): batches per second.
Part 2 trains one model per way, built from the same seed, in interleaved blocks (sync, loader-0,
loader-2, sync, ...) so that load from other processes hits all alike; each way keeps its own
iterator and its own RNG state, so the three models must end with identical weights (checked).
Reports the median seconds per iteration and iterations per second of each way. Without --root it
renders `--images` LT-Glyphs training images with the default profile's glyph params.
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
from rog.data.build import build_dataset, build_sampler  # noqa: E402
from rog.data.glyphs import generate  # noqa: E402
from rog.data.loader import training_loader  # noqa: E402
from rog.data.lvis_dataset import collate  # noqa: E402
from rog.models.builder import build_detector  # noqa: E402

WAYS = ("sync", "loader-0", "loader-2")


def synchronous(dataset, sampler, batch_size):
    """The training loop's loading before the DataLoader: decode each batch when it is needed."""
    stream = sampler.positions()
    while True:
        picks = [next(stream) for _ in range(batch_size)]
        yield collate([dataset[index] for _, _, index in picks])


def stream(way: str, dataset_params: dict, batch_size: int, seed: int = 0):
    """An infinite iterator of (images, targets) of `way`, over a fresh dataset (cold cache)."""
    dataset = build_dataset(dataset_params, "train")
    sampler = build_sampler(dataset_params, dataset, seed)
    if way == "sync":
        return dataset, synchronous(dataset, sampler, batch_size)
    loader = training_loader(dataset, sampler, batch_size, workers=int(way.split("-")[1]), seed=seed)
    return dataset, ((images, targets) for images, targets, _ in loader)


def loading_alone(dataset_params: dict, batch_size: int, batches: int) -> dict[str, float]:
    """Batches per second of each way, data only (worker start-up included)."""
    rates = {}
    for way in WAYS:
        start = time.perf_counter()
        _, it = stream(way, dataset_params, batch_size)
        for _ in range(batches):
            next(it)
        rates[way] = batches / (time.perf_counter() - start)
        it.close()
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="rendered training images (without --root)")
    parser.add_argument("--root", help="an LT-Glyphs folder to use instead of rendering one")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per way")
    parser.add_argument("--block", type=int, default=10, help="iterations per block")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = resolve_run("params.yaml", "default", overrides=args.overrides)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            glyphs = dict(params["dataset"]["glyphs"], num_train=args.images, num_val=1, min_val_images=0)
            generate(glyphs, tmp)
            root = tmp
        dataset_params = dict(params["dataset"], root=str(root))
        rates = loading_alone(dataset_params, args.batch_size, 2 * args.block)

        models, streams, rng, times = {}, {}, {}, {way: [] for way in WAYS}
        for way in WAYS:
            torch.manual_seed(0)
            dataset, streams[way] = stream(way, dataset_params, args.batch_size)
            model = build_detector(params["model"], dataset.num_classes, dataset.category_counts()).train()
            models[way] = (model, torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4))
            rng[way] = torch.get_rng_state()
        for _ in range(args.rounds):
            for way in WAYS:
                model, opt = models[way]
                torch.set_rng_state(rng[way])  # each way's RoI sampling draws its own stream
                for _ in range(args.block):
                    start = time.perf_counter()
                    images, targets = next(streams[way])
                    losses = model(images, targets)
                    opt.zero_grad()
                    sum(losses.values()).backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                    opt.step()
                    times[way].append(time.perf_counter() - start)
                rng[way] = torch.get_rng_state()
        for it in streams.values():
            it.close()

    reference = models["sync"][0].state_dict()
    same = all(torch.equal(reference[k], models[way][0].state_dict()[k]) for way in WAYS[1:] for k in reference)
    print(f"LT-Glyphs training, {params['model']['min_size']} px, batch {args.batch_size}, "
          f"{args.threads} training thread(s), {args.rounds} x {args.block} iterations per way, interleaved")
    print(f"{'way':10s} {'load batches/s':>15s} {'train s/it (median)':>20s} {'train it/s':>11s} {'vs sync':>8s}")
    base = statistics.median(times["sync"])
    for way in WAYS:
        median = statistics.median(times[way])
        print(f"{way:10s} {rates[way]:15.1f} {median:20.3f} {1 / median:11.2f} {100 * (base / median - 1):+7.1f}%")
    print(f"identical weights after {args.rounds * args.block} iterations: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

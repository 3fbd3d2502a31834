"""Datasets and samplers from the `dataset` section of params.yaml (one entry switches LT-Glyphs / LVIS v1)."""
from __future__ import annotations

from pathlib import Path

from rog.data.lvis_dataset import LVISDataset
from rog.data.registry import dataset_spec
from rog.data.sampler import RandomSampler, RepeatFactorSampler, repeat_factors, scaled_threshold
from rog.data.transforms import build_transforms


def dataset_paths(dataset_params: dict, split: str) -> tuple[Path, Path]:
    """(json path, image root) of `split` ('train' or 'val'); relative paths are below dataset.root.
    OpenImages (dataset.name openimages): the converted json of rog.data.openimages."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if dataset_spec(dataset_params.get("name")).converted:  # OpenImages: the challenge CSVs, converted once (cached)
        from rog.data.openimages import split_files

        return split_files(dataset_params, split)
    root = Path(dataset_params["root"])
    json_path = root / dataset_params[f"{split}_json"]
    image_root = root / dataset_params["image_root"]
    return json_path, image_root


def build_dataset(dataset_params: dict, split: str, train: bool | None = None) -> LVISDataset:
    """LVISDataset for `split`; `train` (default: split == 'train') adds train-time transforms,
    drops images without annotations (filter_empty_train) and caches images (cache_images)."""
    train = split == "train" if train is None else train
    json_path, image_root = dataset_paths(dataset_params, split)
    return LVISDataset(
        json_path, image_root, build_transforms(dataset_params, train),
        with_masks=bool(dataset_params["with_masks"]),
        cache_images=bool(dataset_params["cache_images"]) and train,
        filter_empty=bool(dataset_params["filter_empty_train"]) and train,
        min_box_size=float(dataset_params["min_box_size"]),
    )


def build_sampler(dataset_params: dict, dataset: LVISDataset, seed: int = 0, rank: int = 0,
                  world_size: int = 1) -> RandomSampler | RepeatFactorSampler:
    """The training sampler named by dataset.sampler.kind ('random' or 'repeat_factor')."""
    spec = dataset_params["sampler"]
    if spec["kind"] == "random":
        return RandomSampler(len(dataset), seed, rank, world_size)
    if spec["kind"] == "repeat_factor":
        threshold = scaled_threshold(spec["repeat_threshold"], spec.get("threshold_images"), len(dataset))
        factors = repeat_factors(dataset.image_labels(), threshold)
        return RepeatFactorSampler(factors, seed, rank, world_size, rounding=spec["rounding"])
    raise ValueError(f"dataset.sampler.kind must be 'random' or 'repeat_factor', got {spec['kind']!r}")

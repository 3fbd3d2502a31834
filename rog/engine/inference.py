"""Inference over a dataset split -> LVIS results records (bbox, and segm for Mask R-CNN).

Masks are encoded to RLE batch by batch, so memory stays flat however many images the split has.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from rog.data.lvis_dataset import LVISDataset
from rog.engine import checkpoint
from rog.evaluation.results import detections_to_results, with_segmentation
from rog.models.builder import build_detector
from rog.provenance import provenance


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: LVISDataset, batch_size: int = 8,
            device: torch.device | str = "cpu", progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Run `model` on every image of `dataset`; return (bbox records, segm records).

    Records follow rog.evaluation.results (category ids from the dataset); segm records are empty for
    a Faster R-CNN. At most model.roi_heads.detections_per_img bbox records per image, and segm records
    for the first masks_per_img of them (all when None).
    """
    model.eval()
    bbox, segm = [], []
    indices = range(len(dataset))
    bar = tqdm(total=len(dataset), desc="inference", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(dataset), batch_size):
        batch = indices[start:start + batch_size]
        images = [dataset.load_image(i).to(device).float().div_(255.0) for i in batch]
        outputs = model(images)
        for i, out in zip(batch, outputs):
            records = detections_to_results(int(dataset.images[i]["id"]), out["boxes"], out["scores"],
                                            out["labels"], dataset.category_ids)
            if "masks" in out:  # the first len(masks) detections have one
                segm.extend(with_segmentation(records[:len(out["masks"])], out["masks"]))
            bbox.extend(records)
        bar.update(len(batch))
    bar.close()
    return bbox, segm


def load_model(path, num_classes: int | None = None, device: torch.device | str = "cpu",
               params: dict | None = None, state: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """A detector restored from a checkpoint; returns (model in eval mode, checkpoint dict).

    params: the resolved params to build the model from (default: the checkpoint's own); its model
    must match the checkpoint's architecture and classes (CheckpointError otherwise). Its evaluate
    section's build options apply: norcal_gamma (NorCal scores from the checkpoint's class counts) and
    masks (false: boxes only). state: the checkpoint dict when already loaded.
    """
    state = state if state is not None else checkpoint.load(path)
    params = params if params is not None else state["params"]
    classes = num_classes if num_classes is not None else state["signature"]["num_classes"]
    if classes != state["signature"]["num_classes"]:
        raise checkpoint.CheckpointError(f"{path}: checkpoint has {state['signature']['num_classes']} "
                                         f"classes, the dataset {classes}")
    ev = params.get("evaluate") or {}
    model = build_detector(params["model"], classes, checkpoint.counts_from_state(state),
                           norcal_gamma=ev.get("norcal_gamma"), masks=ev.get("masks", True))
    checkpoint.check_signature(state, model.signature, path)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def evaluate_checkpoint(checkpoint_path, out_dir, params: dict | None = None, progress: bool = False,
                        max_dets_list: Sequence[int] | None = None) -> dict:
    """Inference on params.evaluate.split + LVIS evaluation of a checkpoint; returns the metrics dict.

    Writes out_dir/results_bbox.json, results_segm.json (empty list without masks) and metrics.json.
    params: resolved params (default: the checkpoint's own); evaluate.norcal_gamma and evaluate.masks
    choose how the model is built (see load_model); with norcal_gamma the metrics' "checkpoint" records it.
    max_dets_list: the K of the max-detections sweep (default: params.evaluate.max_dets_sweep); [K] with
    K = evaluate.max_dets computes the main metrics only (learning curves).
    Nothing is written when the checkpoint, the params or the data are bad, nor when the evaluation
    fails: the three files are written together once every metric is computed.
    """
    from rog.data.build import build_dataset, dataset_paths
    from rog.engine.distributed import local_device
    from rog.evaluation.groups import is_openimages, openimages_metrics
    from rog.evaluation.metrics import evaluate_all, write_metrics_json
    from rog.evaluation.results import write_results_json

    from rog.engine.registries import check_params

    start = time.perf_counter()
    state = checkpoint.load(checkpoint_path)
    params = check_params(params if params is not None else state["params"])
    ev = params["evaluate"]
    device = local_device(params["train"]["device"])
    if device.type == "cpu":
        torch.set_num_threads(int(params["train"]["threads"]))
    dataset = build_dataset(params["dataset"], ev["split"], train=False)
    model, _ = load_model(checkpoint_path, dataset.num_classes, device, params, state=state)
    test = params["model"]["test"]
    mask_budget = test.get("masks_per_img") if ev.get("masks", True) else None
    if mask_budget is not None and mask_budget < int(ev["max_dets"]):
        raise ValueError(f"model.test.masks_per_img = {mask_budget} < evaluate.max_dets = {ev['max_dets']}: "
                         "the main mask AP needs a mask for each of its detections")
    bbox, segm = predict(model, dataset, int(ev["batch_size"]), device, progress)
    train_json, _ = dataset_paths(params["dataset"], "train")
    metrics = evaluate_all(dataset.json_path, bbox, segm if segm else None,
                           max_dets_list=ev["max_dets_sweep"] if max_dets_list is None else max_dets_list,
                           max_dets=int(ev["max_dets"]),
                           train_image_counts=train_json if train_json.is_file() else None,
                           backend=ev["backend"], mask_max_dets=mask_budget)
    if is_openimages(dataset.lvis):  # AP1..AP5 of EQLv2's groups and the challenge metric (Table 6)
        metrics["openimages"] = openimages_metrics(dataset.lvis, bbox, metrics["bbox"])
    metrics["checkpoint"] = {"path": str(checkpoint_path), "iteration": state["iteration"],
                             "params_hash": state.get("params_hash")}
    if ev.get("norcal_gamma") is not None:
        metrics["checkpoint"]["norcal_gamma"] = float(ev["norcal_gamma"])
    metrics["provenance"] = provenance(device, evaluate=time.perf_counter() - start)
    out, written = Path(out_dir), []
    try:
        for name, write, content in (("results_bbox.json", write_results_json, bbox),
                                     ("results_segm.json", write_results_json, segm),
                                     ("metrics.json", write_metrics_json, metrics)):
            write(out / name, content)
            written.append(out / name)
    except BaseException:
        for path in written:  # all three or none
            path.unlink(missing_ok=True)
        raise
    return metrics

"""Inference over a dataset split -> LVIS results records (bbox, and segm for Mask R-CNN).

Masks are encoded to RLE batch by batch, so memory stays flat however many images the split has.
"""
from __future__ import annotations

import torch
from tqdm import tqdm

from rog.data.lvis_dataset import LVISDataset
from rog.engine import checkpoint
from rog.evaluation.results import detections_to_results
from rog.models.builder import build_detector


@torch.no_grad()
def predict(model: torch.nn.Module, dataset: LVISDataset, batch_size: int = 8,
            device: torch.device | str = "cpu", progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Run `model` on every image of `dataset`; return (bbox records, segm records).

    Records follow rog.evaluation.results (category ids from the dataset); segm records are empty for
    a Faster R-CNN. At most model.roi_heads.detections_per_img records per image.
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
                                            out["labels"], dataset.category_ids, masks=out.get("masks"))
            if "masks" in out:
                segm.extend(records)
            bbox.extend({k: v for k, v in r.items() if k != "segmentation"} for r in records)
        bar.update(len(batch))
    bar.close()
    return bbox, segm


def load_model(path, num_classes: int | None = None, device: torch.device | str = "cpu",
               params: dict | None = None, state: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """A detector restored from a checkpoint; returns (model in eval mode, checkpoint dict).

    params: the resolved params to build the model from (default: the checkpoint's own); its model
    must match the checkpoint's architecture and classes (CheckpointError otherwise).
    state: the checkpoint dict when already loaded.
    """
    state = state if state is not None else checkpoint.load(path)
    params = params if params is not None else state["params"]
    classes = num_classes if num_classes is not None else state["signature"]["num_classes"]
    if classes != state["signature"]["num_classes"]:
        raise checkpoint.CheckpointError(f"{path}: checkpoint has {state['signature']['num_classes']} "
                                         f"classes, the dataset {classes}")
    model = build_detector(params["model"], classes, checkpoint.counts_from_state(state))
    checkpoint.check_signature(state, model.signature, path)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state

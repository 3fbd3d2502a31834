"""Pretraining the tiny backbone's body on glyph classification (rog.data.pretrain_glyphs), once.

`pretrain(params, out_dir)` renders the balanced train and val sets of the `pretrain` section (style
from dataset.glyphs), trains tiny_body (model.backbone's widths and depth) + global average pooling +
a linear classifier with SGD (momentum, linear warmup then cosine decay), inputs normalised with
model.image_mean/std as the detector's transform does, and writes out_dir/backbone.pt
(rog.models.pretrained: the body's state_dict and how it was made) and out_dir/summary.json (the same
metadata, readable). Same params and seed on the same machine: the same weights (one thread by default).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from rog.models import pretrained
from rog.models.backbones import tiny_body

REQUIRED_KEYS = ("max_similarity", "max_classes", "image_size", "images_per_class", "val_images_per_class",
                 "seed", "iterations", "batch_size", "lr", "momentum", "weight_decay", "warmup_iterations",
                 "eval_every", "threads")


class PretrainParamsError(ValueError):
    """The pretrain section is invalid, or selects no characters."""


def check_params(p: dict) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in p]
    if missing:
        raise PretrainParamsError(f"pretrain: missing keys {', '.join(missing)}")
    for key in ("max_classes", "image_size", "images_per_class", "val_images_per_class", "iterations",
                "batch_size", "eval_every", "threads"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise PretrainParamsError(f"pretrain.{key}: expected a positive integer, got {p[key]!r}")
    if not 0.0 < float(p["max_similarity"]) <= 1.0:
        raise PretrainParamsError(f"pretrain.max_similarity: must be in (0, 1], got {p['max_similarity']}")
    if p["image_size"] < 32:
        raise PretrainParamsError("pretrain.image_size: at least 32 (the body's stride)")


def classifier(widths, depth: int, num_classes: int) -> nn.Sequential:
    """tiny_body -> global average pooling -> linear: images [B, 3, S, S] -> logits [B, num_classes]."""
    return nn.Sequential(tiny_body(tuple(widths), depth), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(int(widths[-1]), num_classes))


def lr_at(it: int, p: dict) -> float:
    """Linear warmup from lr / 100 over warmup_iterations, then cosine decay to 0 at `iterations`."""
    warm, total, lr = int(p["warmup_iterations"]), int(p["iterations"]), float(p["lr"])
    if it < warm:
        return lr * (0.01 + 0.99 * it / warm)
    return 0.5 * lr * (1.0 + math.cos(math.pi * (it - warm) / max(total - warm, 1)))


def normaliser(model_params: dict):
    """uint8 [B, 3, S, S] -> float [B, 3, S, S] as the detector's transform feeds its backbone."""
    mean = torch.tensor(model_params["image_mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(model_params["image_std"], dtype=torch.float32).view(1, 3, 1, 1)
    return lambda images: (images.float() / 255.0 - mean) / std


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, prepare, batch: int = 256) -> float:
    """Top-1 accuracy in eval mode (BN running statistics); restores the training mode."""
    was_training = model.training
    model.eval()
    correct = sum(int((model(prepare(images[i:i + batch])).argmax(1) == labels[i:i + batch]).sum())
                  for i in range(0, len(labels), batch))
    model.train(was_training)
    return correct / max(len(labels), 1)


def render_data(params: dict):
    """(chars, (train images, labels), (val images, labels)) of the pretrain section."""
    from rog.data.glyphs import load_fonts
    from rog.data.pretrain_glyphs import render_set, select_chars

    p, style = params["pretrain"], params["dataset"]["glyphs"]
    fonts = load_fonts(style["snapshot"], style["fonts"])
    chars = select_chars(fonts, float(p["max_similarity"]), int(p["max_classes"]))
    if len(chars) < 2:
        raise PretrainParamsError(f"pretrain: {len(chars)} characters pass max_similarity "
                                  f"{p['max_similarity']} in all fonts; raise it")
    size, seed = int(p["image_size"]), int(p["seed"])
    train = render_set(fonts, chars, int(p["images_per_class"]), size, style, seed, "train")
    val = render_set(fonts, chars, int(p["val_images_per_class"]), size, style, seed, "val")
    return chars, train, val


def pretrain(params: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """Pretrain the body (module docstring); returns the metadata written (without the weights)."""
    p, backbone = params["pretrain"], params["model"]["backbone"]
    check_params(p)
    if backbone["name"] != "tiny":
        raise PretrainParamsError(f"pretrain: model.backbone.name is '{backbone['name']}'; only tiny is pretrained here")
    start = time.perf_counter()
    torch.set_num_threads(int(p["threads"]))
    chars, (x_train, y_train), (x_val, y_val) = render_data(params)
    torch.manual_seed(int(p["seed"]))
    model = classifier(backbone["widths"], int(backbone["depth"]), len(chars))
    prepare = normaliser(params["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_at(0, p), momentum=float(p["momentum"]),
                                weight_decay=float(p["weight_decay"]))
    order = torch.Generator().manual_seed(int(p["seed"]))
    batch, n = int(p["batch_size"]), len(y_train)
    perm, pos, history, window = torch.randperm(n, generator=order), 0, [], []
    model.train()
    for it in tqdm(range(int(p["iterations"])), desc="pretrain", disable=not progress, dynamic_ncols=True):
        if pos + batch > n:  # a new epoch: reshuffle (the last partial batch is dropped)
            perm, pos = torch.randperm(n, generator=order), 0
        idx = perm[pos:pos + batch]
        pos += batch
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it, p)
        loss = nn.functional.cross_entropy(model(prepare(x_train[idx])), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if (it + 1) % int(p["eval_every"]) == 0 or it + 1 == int(p["iterations"]):
            history.append({"iteration": it + 1, "loss": round(sum(window) / len(window), 4),
                            "val_accuracy": round(accuracy(model, x_val, y_val, prepare), 4)})
            window = []
    meta = {"chars": chars, "num_classes": len(chars), "params": p,
            "style": {k: params["dataset"]["glyphs"][k] for k in ("fonts", "glyph_size", "background")},
            "train_accuracy": round(accuracy(model, x_train, y_train, prepare), 4),
            "val_accuracy": history[-1]["val_accuracy"], "history": history}
    arch = {"name": "tiny", "widths": [int(w) for w in backbone["widths"]], "depth": int(backbone["depth"])}
    out = Path(out_dir)
    path = pretrained.save(out / pretrained.WEIGHTS_FILE, model[0], arch, **meta)
    meta = dict(meta, arch=arch, body_sha256=pretrained.weights_digest(path))
    (out / "summary.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    # the wall time is returned, not written: the stage's output must be byte-identical when rerun (a fresh
    # clone re-makes it, and DVC would otherwise call every experiment that depends on it changed)
    return dict(meta, seconds=round(time.perf_counter() - start, 1))

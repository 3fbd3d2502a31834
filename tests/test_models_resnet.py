"""ResNet-FPN backbones (R50, R101) and the LVIS GPU profiles: built and run on CPU with random weights.

Nothing is downloaded: weight fetching is made to fail, and `pretrained` stays false.
"""
from __future__ import annotations

import pytest
import torch
import torchvision

from rog.config import resolve_run
from rog.engine.schedule import step_iterations
from rog.models.backbones import build_backbone
from rog.models.builder import build_detector
from test_models import random_batch

SMALL = ["model.backbone.pretrained=false", "model.min_size=128", "model.max_size=128",
         "model.rpn.pre_nms_top_n_train=200", "model.rpn.post_nms_top_n_train=64",
         "model.rpn.pre_nms_top_n_test=200", "model.rpn.post_nms_top_n_test=32",
         "model.roi.batch_size_per_image=32", "model.test.detections_per_img=20"]


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.mark.parametrize("name, resnet, blocks", [("resnet50_fpn", torchvision.models.resnet50, (3, 4, 6, 3)),
                                                   ("resnet101_fpn", torchvision.models.resnet101, (3, 4, 23, 3))])
def test_resnet_fpn_body_is_torchvision_resnet(name, resnet, blocks):
    backbone = build_backbone({"name": name, "pretrained": False, "trainable_layers": 5})
    body = backbone.body
    assert tuple(len(getattr(body, f"layer{i}")) for i in range(1, 5)) == blocks
    reference = {k: v.shape for k, v in resnet(weights=None).state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in body.state_dict().items()} == reference
    assert all(p.requires_grad for p in backbone.parameters())  # from scratch: every stage and BN trains
    assert backbone.out_channels == 256 and backbone.strides == (4, 8, 16, 32, 64)
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in features.values()] == [(1, 256, 64 // s, 96 // s) for s in (4, 8, 16, 32)] + [
        (1, 256, 1, 2)]


def test_r101_mask_rcnn_trains_and_infers_on_cpu():
    torch.manual_seed(0)
    c = 4
    params = resolve_run("params.yaml", "lvis_r101_2x", overrides=SMALL)["model"]
    model = build_detector(params, c)
    assert len(model.backbone.body.layer3) == 23
    images, targets = random_batch(2, c)
    losses = model.train()(images, targets)
    assert {"loss_cls", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.body.layer3[22].conv3.weight.grad.abs().sum() > 0
    with torch.no_grad():
        out = model.eval()(images[:1])
    assert set(out[0]) == {"boxes", "labels", "scores", "masks"}
    assert len(out[0]["boxes"]) <= 20 and out[0]["masks"].shape[1:] == (1, 128, 128)


def test_lvis_r101_2x_is_r50_1x_with_r101_and_2x():
    r50 = resolve_run("params.yaml", "lvis_r50_1x")
    r101 = resolve_run("params.yaml", "lvis_r101_2x")
    assert r101["model"]["backbone"] == dict(r50["model"]["backbone"], name="resnet101_fpn")
    assert r101["train"]["iterations"] == 2 * r50["train"]["iterations"] == 180000
    # mmdet's 2x: LR drops at epochs 16 and 22 of 24
    assert step_iterations(r101["train"]["iterations"], r101["train"]["lr_steps"]) == [120000, 165000]
    for section in ("model", "dataset", "evaluate"):
        if section == "model":
            assert dict(r101[section], backbone=None) == dict(r50[section], backbone=None)
        else:
            assert r101[section] == r50[section]
    same = {k: v for k, v in r101["train"].items() if k not in ("iterations", "lr_steps")}
    assert same == {k: v for k, v in r50["train"].items() if k not in ("iterations", "lr_steps")}

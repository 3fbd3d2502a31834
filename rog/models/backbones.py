"""Backbones with a feature pyramid: `tiny` (CPU, from scratch) and `resnet50_fpn` (the paper's).

Both return torchvision's `BackboneWithFPN`: forward(images [B, 3, H, W]) -> OrderedDict of pyramid
levels, each [B, out_channels, H / stride, W / stride], and expose `out_channels` and `strides`.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from rog.models.pretrained import load_weights

BACKBONES = ("tiny", "resnet50_fpn")


def _conv_bn(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


def _stage(in_channels: int, out_channels: int, depth: int) -> nn.Sequential:
    """A stride-2 conv followed by `depth - 1` stride-1 convs, each conv + BN + ReLU."""
    layers = _conv_bn(in_channels, out_channels, 2)
    for _ in range(depth - 1):
        layers += _conv_bn(out_channels, out_channels, 1)
    return nn.Sequential(*layers)


def tiny_body(widths: tuple[int, ...] = (32, 64, 128, 256), depth: int = 2) -> nn.Sequential:
    """Stem (stride 2) then four stages of the given widths at strides 4, 8, 16, 32.

    Children are named stem, layer1..layer4 so that `IntermediateLayerGetter` can pick the outputs.
    """
    children: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(*_conv_bn(3, widths[0], 2)))
    in_channels = widths[0]
    for i, width in enumerate(widths, start=1):
        children[f"layer{i}"] = _stage(in_channels, width, depth)
        in_channels = width
    return nn.Sequential(children)


def tiny_fpn(widths: tuple[int, ...] = (32, 64, 128, 256), depth: int = 2,
             fpn_channels: int = 128) -> BackboneWithFPN:
    """Tiny conv backbone + FPN on strides 8, 16, 32 plus a max-pool level (stride 64).

    Output keys '0', '1', '2' (strides 8, 16, 32) and 'pool' (stride 64), each with `fpn_channels`.
    """
    if len(widths) != 4:
        raise ValueError(f"tiny backbone: widths must list 4 stage widths, got {list(widths)}")
    body = tiny_body(tuple(widths), depth)
    model = BackboneWithFPN(body, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
                            in_channels_list=list(widths[1:]), out_channels=fpn_channels,
                            extra_blocks=LastLevelMaxPool())
    model.strides = (8, 16, 32, 64)
    return model


def resnet50_fpn(pretrained: bool = False, trainable_layers: int = 5) -> BackboneWithFPN:
    """torchvision's ResNet-50 + FPN (256 channels, strides 4..64).

    From scratch (pretrained=False) BatchNorm is trainable (torchvision defaults to frozen BN, which
    would pin random statistics). With ImageNet weights it is frozen BN, as in the paper's setup.
    """
    from torchvision.models import ResNet50_Weights
    from torchvision.ops import misc as misc_nn_ops

    if pretrained:
        model = resnet_fpn_backbone(backbone_name="resnet50", weights=ResNet50_Weights.IMAGENET1K_V1,
                                    norm_layer=misc_nn_ops.FrozenBatchNorm2d,
                                    trainable_layers=min(trainable_layers, 3))
    else:
        model = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=nn.BatchNorm2d,
                                    trainable_layers=trainable_layers)
    model.strides = (4, 8, 16, 32, 64)
    return model


def build_backbone(params: dict) -> BackboneWithFPN:
    """`params` is the model section's `backbone` mapping: {name, ...}; `weights` (tiny): a pretrained body."""
    name = params.get("name")
    if name == "tiny":
        return load_weights(tiny_fpn(tuple(params.get("widths", (32, 64, 128, 256))), int(params.get("depth", 2)),
                                     int(params.get("fpn_channels", 128))), params)
    if name == "resnet50_fpn":
        if params.get("weights"):
            raise ValueError("model.backbone.weights: only the tiny backbone loads pretrained glyph weights "
                             "(resnet50_fpn: model.backbone.pretrained)")
        return resnet50_fpn(bool(params.get("pretrained", False)), int(params.get("trainable_layers", 5)))
    raise ValueError(f"unknown backbone '{name}'; valid: {', '.join(BACKBONES)}")

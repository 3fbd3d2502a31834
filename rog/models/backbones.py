"""Backbones with a feature pyramid: `tiny` (CPU, from scratch), `resnet50_fpn` (the paper's) and
`resnet101_fpn` (the paper's Table 5 R101 rows).

All map images [B, 3, H, W] to an OrderedDict of pyramid levels, each [B, out_channels, H / stride,
W / stride], and expose `out_channels` and `strides` (one per pyramid level, in order). The tiny one
can add a `MASK_LEVEL` map at stride 4 for the mask branch alone (see `TinyFPN`).
"""
from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool


RESNETS = {"resnet50_fpn": "resnet50", "resnet101_fpn": "resnet101"}  # backbone name -> torchvision ResNet
BACKBONES = ("tiny", *RESNETS)


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


MASK_LEVEL = "mask"  # TinyFPN's fine map (stride 4 or 2) for the mask branch: read by the mask RoI pool only
MASK_STRIDES = (4, 2)


class TinyFPN(nn.Module):
    """Tiny conv backbone + FPN on strides 8, 16, 32 plus a max-pool level (stride 64).

    forward -> OrderedDict '0', '1', '2' (strides 8, 16, 32) and 'pool' (stride 64), each
    [B, fpn_channels, ...]. With mask_channels, also MASK_LEVEL: [B, mask_channels, H / s, W / s] at
    s = mask_stride (4 or 2), a narrow top-down path below the pyramid (level '0' by a 1x1 conv,
    upsampled and added to a 1x1 conv of the backbone's stride-4 stage, and of its stride-2 stem for
    s = 2, then a 3x3 conv), so that the mask branch sees a glyph's 2-3 px strokes at 2x or 4x the
    pyramid's finest resolution without a full-width fine level for the RPN and box head to pay for.
    Parameter names match torchvision's BackboneWithFPN (body.*, fpn.*).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), depth: int = 2, fpn_channels: int = 128,
                 mask_channels: int | None = None, mask_stride: int = 4):
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"tiny backbone: widths must list 4 stage widths, got {list(widths)}")
        if mask_stride not in MASK_STRIDES:
            raise ValueError(f"tiny backbone: mask stride {mask_stride}; valid: {MASK_STRIDES}")
        layers = {"layer2": "0", "layer3": "1", "layer4": "2"}
        self.fine = ["c2", "c1"][:MASK_STRIDES.index(mask_stride) + 1] if mask_channels else []  # coarse to fine
        layers = {**{"stem": "c1", "layer1": "c2"}, **layers} if mask_channels else layers
        self.body = IntermediateLayerGetter(tiny_body(tuple(widths), depth), return_layers=layers)
        self.fpn = FeaturePyramidNetwork(list(widths[1:]), fpn_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = fpn_channels
        self.strides = (8, 16, 32, 64)
        self.mask_channels = mask_channels
        if mask_channels:  # stem and layer1 both have widths[0] channels
            self.mask_laterals = nn.ModuleList(nn.Conv2d(widths[0], mask_channels, 1) for _ in self.fine)
            self.mask_top_down = nn.Conv2d(fpn_channels, mask_channels, 1)
            self.mask_out = nn.Conv2d(mask_channels, mask_channels, 3, padding=1)

    def forward(self, images):
        features = self.body(images)
        fine = {k: features.pop(k) for k in ("c1", "c2") if k in features}
        out = self.fpn(features)
        if self.mask_channels:
            x = self.mask_top_down(out["0"])
            for name, lateral in zip(self.fine, self.mask_laterals):
                x = F.interpolate(x, size=fine[name].shape[-2:], mode="nearest") + lateral(fine[name])
            out[MASK_LEVEL] = self.mask_out(x)
        return out


def tiny_fpn(widths: tuple[int, ...] = (32, 64, 128, 256), depth: int = 2, fpn_channels: int = 128,
             mask_channels: int | None = None, mask_stride: int = 4) -> TinyFPN:
    """See `TinyFPN`."""
    return TinyFPN(tuple(widths), depth, fpn_channels, mask_channels, mask_stride)


def resnet_fpn(name: str = "resnet50_fpn", pretrained: bool = False, trainable_layers: int = 5) -> BackboneWithFPN:
    """torchvision's ResNet-50 or -101 + FPN (256 channels, strides 4..64), as its resnet_fpn_backbone.

    name: a key of RESNETS. From scratch (pretrained=False: random weights, nothing downloaded)
    BatchNorm is trainable (torchvision defaults to frozen BN, which would pin random statistics).
    pretrained=True loads torchvision's ImageNet weights (IMAGENET1K_V1, mmdet's `torchvision://`
    checkpoints) with frozen BN and at most 3 trainable stages, as in the paper's setup.
    """
    from torchvision.models import ResNet50_Weights, ResNet101_Weights
    from torchvision.ops import misc as misc_nn_ops

    if name not in RESNETS:
        raise ValueError(f"unknown ResNet backbone '{name}'; valid: {', '.join(RESNETS)}")
    if pretrained:
        weights = {"resnet50_fpn": ResNet50_Weights, "resnet101_fpn": ResNet101_Weights}[name].IMAGENET1K_V1
        model = resnet_fpn_backbone(backbone_name=RESNETS[name], weights=weights,
                                    norm_layer=misc_nn_ops.FrozenBatchNorm2d,
                                    trainable_layers=min(trainable_layers, 3))
    else:
        model = resnet_fpn_backbone(backbone_name=RESNETS[name], weights=None, norm_layer=nn.BatchNorm2d,
                                    trainable_layers=trainable_layers)
    model.strides = (4, 8, 16, 32, 64)
    return model


def build_backbone(params: dict, mask_channels: int | None = None, mask_stride: int = 4) -> nn.Module:
    """`params` is the model section's `backbone` mapping: {name, widths, depth, ...};
    mask_channels: add the tiny backbone's MASK_LEVEL of that width at mask_stride (None: the mask
    branch reads the pyramid)."""
    name = params.get("name")
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; valid: {', '.join(BACKBONES)}")
    if mask_channels and name != "tiny":
        raise ValueError(f"model.roi.mask_features 'stride{mask_stride}' is for the tiny backbone; {name} "
                         "has a stride-4 pyramid level already (use 'fpn')")
    if name == "tiny":
        return tiny_fpn(tuple(params.get("widths", (32, 64, 128, 256))), int(params.get("depth", 2)),
                        int(params.get("fpn_channels", 128)), mask_channels, mask_stride)
    return resnet_fpn(name, bool(params.get("pretrained", False)), int(params.get("trainable_layers", 5)))

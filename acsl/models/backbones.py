"""Backbones with a feature pyramid (Lin et al., FPN), built from torchvision's own parts.

- ``resnet18`` / ``resnet34`` / ``resnet50`` / ``resnet101`` / ``resnet152`` / ``resnext101_64x4d``
  (the paper's Table 3): torchvision's ResNet-FPN
  (``resnet_fpn_backbone``). With random initialisation the batch norms train (``nn.BatchNorm2d``), as
  torchvision's detection references do when no pretrained weights are loaded; with pretrained weights
  they are frozen (``FrozenBatchNorm2d``).
- ``narrow_resnet``: the CPU profiles' stand-in for the paper's ResNet-50: torchvision ``BasicBlock``
  stages of widths 16/32/64/128 (one block each) under the same FPN, about 20× cheaper than ResNet-18.
  Its scaled-down counterparts of the larger backbones keep the relation between them: ResNet-101
  deepens ResNet-50's stride-16 stage (6 → 23 blocks), so ``narrow_resnet_deep`` has 3 blocks there;
  ResNeXt-101 64x4d is also wider, so ``narrow_resnet_wide`` has 3 blocks there and 1.5× the widths
  (plain ``BasicBlock``s: no grouped convolutions at these widths). ResNet-152 deepens ResNet-101's
  stride-8 and stride-16 stages (4 → 8, 23 → 36 blocks), so ``narrow_resnet_deeper`` has 2 and 5 there
  (the paper's Table 5 on Open Images).
"""

from __future__ import annotations

from contextlib import nullcontext

from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.resnet import BasicBlock
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from .weights import torchvision_weights

TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext101_64x4d")
NARROW_WIDTHS = (16, 32, 64, 128)
#: name → (stage widths, blocks per stage)
NARROW_RESNETS: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "narrow_resnet": (NARROW_WIDTHS, (1, 1, 1, 1)),
    "narrow_resnet_deep": (NARROW_WIDTHS, (1, 1, 3, 1)),
    "narrow_resnet_wide": ((24, 48, 96, 192), (1, 1, 3, 1)),
    "narrow_resnet_deeper": (NARROW_WIDTHS, (1, 2, 5, 1)),
}
BACKBONES = TORCHVISION_RESNETS + tuple(NARROW_RESNETS)


def _basic_stage(in_channels: int, out_channels: int, stride: int, norm_layer: type[nn.Module],
                 blocks: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            norm_layer(out_channels),
        )
    layers = [BasicBlock(in_channels, out_channels, stride, downsample, norm_layer=norm_layer)]
    layers += [BasicBlock(out_channels, out_channels, norm_layer=norm_layer) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class NarrowResNet(nn.Module):
    """A four-stage ResNet of torchvision ``BasicBlock``s with strides 4, 8, 16, 32 (like ResNet's
    layer1–layer4) but narrow widths; only its stages are used, through ``BackboneWithFPN``."""

    def __init__(self, widths: tuple[int, int, int, int] = NARROW_WIDTHS,
                 norm_layer: type[nn.Module] = nn.BatchNorm2d, blocks: tuple[int, int, int, int] = (1, 1, 1, 1)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, stride=2, padding=1, bias=False),
            norm_layer(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.layer1 = _basic_stage(widths[0], widths[0], 2, norm_layer, blocks[0])
        self.layer2 = _basic_stage(widths[0], widths[1], 2, norm_layer, blocks[1])
        self.layer3 = _basic_stage(widths[1], widths[2], 2, norm_layer, blocks[2])
        self.layer4 = _basic_stage(widths[2], widths[3], 2, norm_layer, blocks[3])


def build_backbone(
    name: str, fpn_channels: int = 256, pretrained_backbone: bool = False, frozen_norm: bool = False
) -> BackboneWithFPN:
    """A backbone with FPN outputs ``'0'..'3'`` (strides 4–32) plus ``'pool'`` (stride 64).

    ``pretrained_backbone`` loads torchvision's ImageNet weights; ``frozen_norm`` (implied by it) builds
    the ResNet with frozen batch norms and its stem and first stage frozen, as torchvision does for
    detectors that start from trained weights (e.g. a COCO-trained detector, docs/ARCHITECTURE.md, "Training recipe").
    """
    if name in TORCHVISION_RESNETS:
        weights = None
        if pretrained_backbone:
            from torchvision.models import get_model_weights

            weights = get_model_weights(name).DEFAULT
        frozen = pretrained_backbone or frozen_norm
        with torchvision_weights(weights.url, f"torchvision's ImageNet {name}") if weights else nullcontext():
            backbone = resnet_fpn_backbone(
                backbone_name=name,
                weights=weights,
                norm_layer=FrozenBatchNorm2d if frozen else nn.BatchNorm2d,
                trainable_layers=3 if frozen else 5,
            )
        if fpn_channels != backbone.out_channels:
            raise ValueError(f"backbone {name!r} uses torchvision's FPN width 256, got fpn_channels={fpn_channels}")
        return backbone
    if name in NARROW_RESNETS:
        if pretrained_backbone:
            raise ValueError(f"backbone {name!r} has no pretrained weights; set pretrained_backbone=False")
        widths, blocks = NARROW_RESNETS[name]
        body = NarrowResNet(widths, FrozenBatchNorm2d if frozen_norm else nn.BatchNorm2d, blocks)
        if frozen_norm:  # like torchvision's trainable_layers=3: the stem and the first stage stay as trained
            for module in (body.stem, body.layer1):
                module.requires_grad_(False)
        return BackboneWithFPN(
            body,
            return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
            in_channels_list=list(widths),
            out_channels=fpn_channels,
            extra_blocks=LastLevelMaxPool(),
        )
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")

"""ImageNet ResNet-50 (torchvision) with EDGE's ``clssimp`` head, for the multi-label paper configs.

``features(x)`` = ReLU(BatchNorm1d(Linear(2048, hidden)(avgpool(backbone(x))))), ``head`` =
Linear(hidden, C): EDGE's head (methods.md 1.5) split so that the last linear layer is ``head`` (the
OODNet contract). ``pretrained=True`` loads torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` through
torchvision's own loader, which verifies the file's hash; nothing else downloads, and the tests never
set it. Without weights, ``width`` scales the bottleneck channels and ``in_channels != 3`` replaces
the stem convolution (small test models only).
"""

from __future__ import annotations

import torch
from torch import nn

from oodflow.models.base import OODNet, check_args, scale_channels


class ResNet50ML(OODNet):
    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        pretrained: bool = False,
        hidden: int = 1000,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if pretrained and (in_channels != 3 or width != 1.0):
            raise ValueError("the pretrained resnet50 takes RGB input at width 1")
        from torchvision.models import ResNet50_Weights, resnet50

        if pretrained:
            net = resnet50(weights=ResNet50_Weights.IMAGENET1K_V1)
        else:
            net = resnet50(weights=None, width_per_group=scale_channels(64, width))
            if in_channels != 3:
                net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.backbone = nn.Sequential(*list(net.children())[:-1])  # up to and including avgpool
        self.neck = nn.Sequential(
            nn.Flatten(), nn.Linear(net.fc.in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(x))


def resnet50(
    num_classes: int, in_channels: int = 3, pretrained: bool = False, hidden: int = 1000, width: float = 1.0
) -> ResNet50ML:
    """torchvision ResNet-50 (ImageNet weights with ``pretrained``) + EDGE's clssimp head."""
    return ResNet50ML(num_classes, in_channels, pretrained, hidden, width)

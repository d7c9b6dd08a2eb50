"""ImageNet ResNet-50 (torchvision) with EDGE's ``clssimp`` head, for the multi-label paper configs.

``backbone_features(x)`` = avgpool(backbone(x)) (2048-d), ``features(x)`` =
ReLU(BatchNorm1d(Linear(2048, hidden)(backbone_features(x)))) (the ``neck``), ``head`` =
Linear(hidden, C): EDGE's head (docs/multilabel.md) split so that the last linear layer is ``head`` (the
OODNet contract). ``pretrained=True`` loads torchvision's ``ResNet50_Weights.IMAGENET1K_V1`` from
the file given as ``weights`` (catalog entry ``resnet50_imagenet1k_v1`` of
:mod:`oodflow.models.weights`, fetched by the workflow's ``download_weights`` rule) with
``torch.load(weights_only=True)``; nothing downloads here. Without pretrained weights, ``width``
scales the bottleneck channels and ``in_channels != 3`` replaces the stem convolution (small test
models only).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from oodflow.models.base import OODNet, check_args, scale_channels

#: The weights catalog entry that ``pretrained=True`` reads.
PRETRAINED = "resnet50_imagenet1k_v1"


class ResNet50ML(OODNet):
    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        pretrained: bool = False,
        hidden: int = 1000,
        width: float = 1.0,
        *,
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if pretrained and (in_channels != 3 or width != 1.0):
            raise ValueError("the pretrained resnet50 takes RGB input at width 1")
        if weights is not None and not pretrained:
            raise ValueError(f"resnet50: a weights file ({weights}) is only read with pretrained=True")
        from torchvision.models import resnet50

        from oodflow.models.weights import load_pretrained, missing_weights_message

        net = resnet50(weights=None, width_per_group=scale_channels(64, width))
        if pretrained:
            if weights is None:
                raise ValueError(
                    f"resnet50(pretrained=True) needs weights=<file>; {missing_weights_message(PRETRAINED)}"
                )
            load_pretrained(net, weights, PRETRAINED)
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.backbone = nn.Sequential(*list(net.children())[:-1])  # up to and including avgpool
        self.neck = nn.Sequential(
            nn.Flatten(), nn.Linear(net.fc.in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.backbone(x))

    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 2048-d (``fc.in_features``) average-pooled ResNet output that EDGE's ``oe.py`` takes."""
        return self.backbone(x).flatten(1)

    @property
    def classifier_neck(self) -> nn.Module:
        return self.neck


def resnet50(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    hidden: int = 1000,
    width: float = 1.0,
    *,
    weights: str | Path | None = None,
) -> ResNet50ML:
    """torchvision ResNet-50 (with ``pretrained``: the ImageNet weights of the file ``weights``) +
    EDGE's clssimp head."""
    return ResNet50ML(num_classes, in_channels, pretrained, hidden, width, weights=weights)

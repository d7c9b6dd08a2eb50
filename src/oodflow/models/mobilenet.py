"""MobileNetV3 (torchvision, trained from scratch) split into features and head."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large as tv_large
from torchvision.models import mobilenet_v3_small as tv_small

from oodflow.models.base import OODNet, check_args

__all__ = ["MobileNetV3", "mobilenet_v3_large", "mobilenet_v3_small"]


class MobileNetV3(OODNet):
    """torchvision MobileNetV3; features end after the classifier's Linear-Hardswish-Dropout."""

    def __init__(
        self,
        builder: Callable[..., nn.Module],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        net = builder(weights=None, num_classes=num_classes, width_mult=width, dropout=dropout)
        body = net.features
        if in_channels != 3:
            old = body[0][0]
            new = nn.Conv2d(
                in_channels,
                old.out_channels,
                old.kernel_size,
                stride=old.stride,
                padding=old.padding,
                bias=False,
            )
            nn.init.kaiming_normal_(new.weight, mode="fan_out")
            body[0][0] = new
        self.body = body
        self.pool = nn.Sequential(net.avgpool, nn.Flatten())
        self.pre_head = net.classifier[:-1]
        head = net.classifier[-1]
        if not isinstance(head, nn.Linear):
            raise TypeError(f"expected a Linear classifier head, got {type(head).__name__}")
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pre_head(self.pool(self.body(x)))


def mobilenet_v3_small(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, dropout: float = 0.2
) -> MobileNetV3:
    """MobileNetV3-Small from scratch (1024-d features at width 1)."""
    return MobileNetV3(tv_small, num_classes, in_channels, width, dropout)


def mobilenet_v3_large(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, dropout: float = 0.2
) -> MobileNetV3:
    """MobileNetV3-Large from scratch (1280-d features at width 1)."""
    return MobileNetV3(tv_large, num_classes, in_channels, width, dropout)

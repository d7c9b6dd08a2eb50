"""Wide residual networks (Zagoruyko & Komodakis, 2016) with pre-activation blocks."""

from __future__ import annotations

import torch
from torch import nn

from oodflow.models.base import OODNet, check_args, init_weights, scale_channels
from oodflow.models.responses import ResponseLayer, stage_response_layers

__all__ = ["WideBlock", "WideResNet", "wide_resnet", "wrn40_2"]


class WideBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-dropout-conv3x3, plus an identity or 1x1 conv shortcut.

    When the shape changes, the shortcut conv reads the pre-activated input (BN-ReLU of ``x``),
    as in the common outlier-exposure / hendrycks implementation; otherwise it is ``x`` itself.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(self.drop(self.relu(self.bn2(out))))
        residual = x if self.shortcut is None else self.shortcut(act)
        return out + residual


class WideResNet(OODNet):
    """WRN-depth-k for small images; features are the final BN-ReLU map, average pooled."""

    def __init__(
        self,
        depth: int = 40,
        widen_factor: int = 2,
        dropout: float = 0.3,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n+4 with n >= 1, got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        chans = [
            scale_channels(c, width) for c in (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        ]
        self.stem = nn.Conv2d(in_channels, chans[0], 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        in_ch = chans[0]
        for i, out_ch in enumerate(chans[1:]):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(WideBlock(in_ch, out_ch, stride, dropout))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.post = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(in_ch, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.stages(self.stem(x)))

    def feature_blocks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """stem + stage 1, stage 2, then stage 3 and the final BN-ReLU-pooling."""
        return (
            nn.Sequential(self.stem, self.stages[0]),
            self.stages[1],
            nn.Sequential(self.stages[2], self.post),
        )

    @torch.no_grad()
    def response_layers(self) -> list[ResponseLayer]:
        """The last block's conv2 of each stage, deepest first, linked as in the CIFAR ResNet (the
        head weight for the deepest; linearised blocks, skip + conv2 @ conv1, between stages)."""
        return stage_response_layers(list(self.stages), self.head.weight, lambda b: b.shortcut)


def wide_resnet(
    depth: int,
    widen_factor: int,
    dropout: float = 0.3,
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
) -> WideResNet:
    """Generic WRN-``depth``-``widen_factor``."""
    return WideResNet(depth, widen_factor, dropout, num_classes, in_channels, width)


def wrn40_2(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, dropout: float = 0.3
) -> WideResNet:
    """WRN-40-2 (2,243,546 parameters at width 1, 10 classes)."""
    return wide_resnet(40, 2, dropout, num_classes, in_channels, width)

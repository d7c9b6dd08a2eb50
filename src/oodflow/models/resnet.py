"""CIFAR-style ResNets (3x3 stride-1 stem, no max pool)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from oodflow.models.base import OODNet, check_args, init_weights, scale_channels
from oodflow.models.responses import ResponseLayer, stage_response_layers

__all__ = ["BasicBlock", "ResNet", "resnet18", "resnet34"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1 conv-BN shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(OODNet):
    """ResNet with BasicBlocks for small images; features are the global-average-pooled map."""

    def __init__(
        self,
        layers: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
        chans = [scale_channels(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, chans[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(chans[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        in_ch = chans[0]
        for i, (out_ch, n_blocks) in enumerate(zip(chans, layers)):
            blocks = []
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_ch, out_ch, stride))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(in_ch, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))

    def feature_blocks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """stem + stage 1, stage 2, then stages 3 and 4 and the pooling."""
        return (
            nn.Sequential(self.stem, self.stages[0]),
            self.stages[1],
            nn.Sequential(*self.stages[2:], self.pool),
        )

    @torch.no_grad()
    def response_layers(self) -> list[ResponseLayer]:
        """The last block's conv2 (pre-BN) of each stage, deepest first. The deepest links to the
        classes by the head weight (the pooling keeps channels); stage ``s`` links to stage ``s+1``
        through the linearised blocks of stage ``s+1`` (skip + conv2 @ conv1)."""
        return stage_response_layers(
            list(self.stages),
            self.head.weight,
            lambda b: None if isinstance(b.shortcut, nn.Identity) else b.shortcut[0],
        )


def resnet18(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """CIFAR ResNet-18 (11.17M parameters at width 1, 10 classes)."""
    return ResNet([2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, width=width)


def resnet34(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> ResNet:
    """CIFAR ResNet-34 (21.28M parameters at width 1, 10 classes)."""
    return ResNet([3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, width=width)

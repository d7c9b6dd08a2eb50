"""A small two-conv CNN: the fast CPU model."""

from __future__ import annotations

import torch
from torch import nn

from oodflow.models.base import OODNet, check_args, scale_channels
from oodflow.models.responses import ResponseLayer, conv_matrix

__all__ = ["SmallCNN", "small_cnn"]


def pool_matrix(size: int, out: int) -> torch.Tensor:
    """``(out, size)`` averaging matrix of adaptive average pooling along one axis: row ``i``
    averages positions ``floor(i*size/out) .. ceil((i+1)*size/out) - 1``."""
    m = torch.zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -(-(i + 1) * size // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class GridPool(nn.Module):
    """Adaptive average pooling to ``grid x grid`` as two matrix products. Same values as
    :class:`torch.nn.AdaptiveAvgPool2d`, but with a deterministic backward on CUDA, where
    ``adaptive_avg_pool2d``'s refuses to run under ``torch.use_deterministic_algorithms``."""

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = pool_matrix(x.shape[-2], self.grid).to(x)
        cols = pool_matrix(x.shape[-1], self.grid).to(x)
        return torch.einsum("nchw,ih,jw->ncij", x, rows, cols)


class SmallCNN(OODNet):
    """conv-ReLU-pool x2, adaptive 4x4 average pool, one hidden ReLU layer (the features), head."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        dropout: float = 0.0,
        grid: int = 4,
    ) -> None:
        super().__init__()
        check_args(num_classes, in_channels, width)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        c1, c2, hidden = (scale_channels(c, width) for c in (32, 64, 128))
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            GridPool(grid),
            nn.Flatten(),
            nn.Linear(c2 * grid * grid, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(hidden, num_classes)
        self.grid = grid
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened ``grid x grid`` pooled conv2 maps (``c2 * grid**2``), before the hidden layer."""
        return self.body[:8](x)

    @property
    def classifier_neck(self) -> nn.Module:
        """The hidden layer, its ReLU and the dropout."""
        return self.body[8:]

    def feature_blocks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """conv1-ReLU-pool, conv2-ReLU-pool, then grid pool, hidden layer, ReLU (and dropout)."""
        return self.body[:3], self.body[3:6], self.body[6:]

    @torch.no_grad()
    def response_layers(self) -> list[ResponseLayer]:
        """conv2 then conv1 (pre-ReLU). conv2's link to the classes goes through the hidden layer:
        ``head.W @ hidden.W`` with the ``grid x grid`` positions of each channel summed."""
        conv1, conv2, hidden = self.body[0], self.body[3], self.body[8]
        to_classes = (self.head.weight @ hidden.weight).reshape(self.num_classes, conv2.out_channels, -1)
        return [
            ResponseLayer("conv2", conv2, to_classes.sum(-1)),
            ResponseLayer("conv1", conv1, conv_matrix(conv2)),
        ]


def small_cnn(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, dropout: float = 0.0
) -> SmallCNN:
    """Small CNN (2 conv layers, 128-d features at width 1)."""
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width, dropout=dropout)

"""MobileNetV3 (torchvision, trained from scratch) split into features and head."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import mobilenet_v3_large as tv_large
from torchvision.models import mobilenet_v3_small as tv_small
from torchvision.ops.misc import Conv2dNormActivation

from oodflow.models.base import OODNet, check_args
from oodflow.models.responses import ResponseLayer, chain, conv_matrix

#: inverted-residual blocks whose projection outputs CORES reads, besides the final 1x1 conv
RESPONSE_BLOCKS = 3

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

    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled output of the last conv (before torchvision's hidden classifier layer)."""
        return self.pool(self.body(x))

    @property
    def classifier_neck(self) -> nn.Module:
        return self.pre_head

    @torch.no_grad()
    def response_layers(self) -> list[ResponseLayer]:
        """The final 1x1 conv, then the 1x1 projection conv of the last :data:`RESPONSE_BLOCKS`
        inverted-residual blocks (pre-BN), deepest first.

        Adaptation (CORES defines links for plain ResNets only): the final conv links to the
        classes through ``head.W @ pre_head.W`` (the pooled 1x1 conv feeds the hidden linear
        layer). A block links to the one before it through its linearised branch
        (project @ depthwise @ expand; squeeze-excitation ignored), plus the identity when it
        has a residual connection.
        """
        last = self.body[-1][0]
        to_classes = self.head.weight.detach() @ self.pre_head[0].weight.detach()
        layers = [ResponseLayer("last_conv", last, to_classes)]
        blocks = list(self.body)[1:-1]  # inverted residuals between the stem and the final conv
        up = conv_matrix(last)
        for i in range(len(blocks) - 1, len(blocks) - 1 - RESPONSE_BLOCKS, -1):
            block = blocks[i]
            project = block.block[-1][0]
            layers.append(ResponseLayer(f"block{i + 1}", project, up))
            convs = [m[0] for m in block.block if isinstance(m, Conv2dNormActivation)]
            up = chain(*(conv_matrix(c) for c in reversed(convs)))
            if block.use_res_connect:
                up = up + torch.eye(up.shape[0], dtype=up.dtype, device=up.device)
        return layers


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

"""The common model contract used by every OOD score."""

from __future__ import annotations

import torch
from torch import nn

from oodflow.models.responses import ResponseLayer

__all__ = ["OODNet", "check_args", "init_weights", "scale_channels"]


class OODNet(nn.Module):
    """A classifier split into a feature extractor and a final linear head.

    Contract (relied on by feature caching, ReAct, ViM, ...):

    * ``features(x)`` returns the ``(N, D)`` penultimate features: exactly the tensor the final
      linear layer receives (after global pooling / the last hidden activation). In training
      mode it includes any dropout that directly precedes the head.
    * ``head`` is an :class:`torch.nn.Linear` mapping ``D`` features to ``num_classes`` logits.
    * ``forward(x) == head(features(x))``; subclasses override ``features``, never ``forward``.
    * ``feature_dim == D == head.in_features``.
    * ``backbone_features(x)`` is the ``(N, D_b)`` output of the feature trunk after its pooling,
      before any fully connected layer: ``features(x) == classifier_neck(backbone_features(x))``,
      where ``classifier_neck`` holds every layer between the trunk and ``head`` (the hidden
      fully connected layers of the classifier; the identity for models whose head reads the
      pooled trunk directly). EDGE's OE-set selection takes its spectra here.
    * optional, :meth:`feature_blocks` (DIAS's copycat): the feature extractor as three consecutive
      blocks ``(early, middle, late)`` with ``features(x) == late(middle(early(x)))``.
    """

    head: nn.Linear

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement features()")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def backbone_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled trunk output, before the classifier neck (class docstring); the default, for
        models without a neck, is :meth:`features`."""
        return self.features(x)

    @property
    def classifier_neck(self) -> nn.Module:
        """The layers between :meth:`backbone_features` and ``head`` (default: none)."""
        return nn.Identity()

    def response_layers(self) -> list[ResponseLayer]:
        """Convolutional response layers, deepest first, with their weight links (see
        :mod:`oodflow.models.responses`); needed only by the CORES score."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no response layers, which the CORES score needs"
        )

    def feature_blocks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """The feature extractor as three consecutive blocks ``(early, middle, late)`` sharing the
        model's modules (no copies): ``features(x) == late(middle(early(x)))``. The outputs of
        ``early`` and ``middle`` are the intermediate feature maps that DIAS's copycat imitates
        (classifier32's block 1 and block 2; docs/osr.md)."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no feature blocks (early, middle, late), which DIAS needs"
        )

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    @property
    def num_classes(self) -> int:
        return self.head.out_features


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to an int, at least 1."""
    return max(1, round(channels * width))


def check_args(num_classes: int, in_channels: int, width: float) -> None:
    """Raise :class:`ValueError` for arguments no model can be built with."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")


def init_weights(module: nn.Module) -> None:
    """Standard initialisation: Kaiming-normal convolutions (fan-out), unit/zero batch norm, zero
    linear biases (linear weights keep PyTorch's default)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)

"""Convolutional response layers and the weight links between them (used by the CORES score).

A model lists its *response layers* deepest first. Each has a module whose output ``(N, C, H, W)``
is the response map, and a ``link`` matrix ``(C_up, C)``. Row ``o`` of the link says how much
each of this layer's channels feeds unit ``o`` of the next-deeper space. For the deepest layer
that space is the classes (logits); for the others it is the channels of the layer before it in
the list. CORES backtracks a selection of classes through these links to find the kernels that
matter for a sample.

Links are *linearised* weight paths: activations, batch norm and squeeze-excitation are ignored.
Composition rules:

* a convolution contributes its kernel sums ``W.sum((kh, kw))``, shape ``(out, in)``. This is its
  response to a constant unit input in each channel.
* a depthwise convolution contributes the diagonal matrix of its kernel sums.
* a linear layer contributes its weight.
* a residual block contributes ``skip + branch``: the identity (or its 1x1 shortcut conv) plus
  the product of its branch's convolutions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ResponseLayer", "chain", "conv_matrix", "residual_link", "stage_link", "stage_response_layers"]


@dataclass
class ResponseLayer:
    """One layer CORES reads: ``module``'s output is the response map, ``link`` is ``(C_up, C)``."""

    name: str
    module: nn.Module
    link: torch.Tensor

    @property
    def channels(self) -> int:
        return self.link.shape[1]


def conv_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """The ``(out, in)`` kernel-sum matrix of ``conv``; diagonal for a depthwise convolution."""
    w = conv.weight.detach()
    if conv.groups == 1:
        return w.sum(dim=(2, 3))
    if conv.groups == conv.in_channels == conv.out_channels:
        return torch.diag(w.sum(dim=(1, 2, 3)))
    raise ValueError(f"grouped convolution with {conv.groups} groups is not supported by the response links")


def chain(*matrices: torch.Tensor) -> torch.Tensor:
    """Compose links listed deepest first: ``chain(A, B) = A @ B`` maps B's input to A's output."""
    out = matrices[0]
    for m in matrices[1:]:
        out = out @ m
    return out


def residual_link(branch_convs: list[nn.Conv2d], shortcut: nn.Conv2d | None, channels: int) -> torch.Tensor:
    """Linearised residual block ``skip + branch``. ``branch_convs`` are listed in forward order.
    The skip is the identity (``channels`` wide) or the 1x1 ``shortcut`` convolution."""
    branch = chain(*(conv_matrix(c) for c in reversed(branch_convs)))
    if shortcut is None:
        skip = torch.eye(channels, dtype=branch.dtype, device=branch.device)
    else:
        skip = conv_matrix(shortcut)
    if skip.shape != branch.shape:
        raise ValueError(f"skip {tuple(skip.shape)} and branch {tuple(branch.shape)} of a block differ")
    return skip + branch


def stage_link(blocks: list[tuple[list[nn.Conv2d], nn.Conv2d | None]], channels_in: int) -> torch.Tensor:
    """Compose the linearised residual blocks of one stage (given in forward order)."""
    links = []
    width = channels_in
    for convs, shortcut in blocks:
        links.append(residual_link(convs, shortcut, width))
        width = links[-1].shape[0]
    return chain(*reversed(links))


def stage_response_layers(
    stages: list[nn.Module],
    head_weight: torch.Tensor,
    shortcut: Callable[[nn.Module], nn.Conv2d | None],
) -> list[ResponseLayer]:
    """Response layers of a residual network of stages of blocks with ``conv1``/``conv2`` (CIFAR
    ResNet, WRN): the last block's conv2 of each stage, deepest first. The deepest links to the
    classes by ``head_weight`` (global pooling keeps channels); stage ``s`` links to stage ``s+1``
    through the linearised blocks of stage ``s+1`` (skip + conv2 @ conv1). ``shortcut(block)`` is a
    block's 1x1 shortcut convolution, or None for the identity."""
    layers = [ResponseLayer(f"stage{len(stages)}", stages[-1][-1].conv2, head_weight.detach())]
    for s in range(len(stages) - 2, -1, -1):
        blocks = [([b.conv1, b.conv2], shortcut(b)) for b in stages[s + 1]]
        link = stage_link(blocks, stages[s][-1].conv2.out_channels)
        layers.append(ResponseLayer(f"stage{s + 1}", stages[s][-1].conv2, link))
    return layers

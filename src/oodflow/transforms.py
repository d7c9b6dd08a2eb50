"""Batched, seeded image transforms on model-ready tensors ``(N, C, H, W)``.

:func:`random_resized_crop` is EDGE's training augmentation (``RandomHorizontalFlip()`` then
``RandomResizedCrop((256, 256), scale=(0.5, 2.0))`` in ``train.py`` / ``oe.py`` of
Yuchen-Sunflower/EDGE@6cce68fa), written from torchvision's documented ``RandomResizedCrop``
behaviour, as one batched operation whose randomness comes from one :class:`torch.Generator`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: torchvision's number of box draws before it falls back to the central crop.
ATTEMPTS = 10


def crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 2.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = ATTEMPTS,
) -> torch.Tensor:
    """``(n, 4)`` int64 crop boxes ``(top, left, h, w)``, one per image (torchvision's sampling).

    Each of ``attempts`` draws takes an area fraction ``s ~ U(scale)`` of the image area ``A`` and
    an aspect ratio ``r = exp(U(log ratio))``, giving ``w = round(sqrt(s A r))`` and
    ``h = round(sqrt(s A / r))``; the first draw with ``0 < w <= width`` and ``0 < h <= height``
    is kept (so with ``scale = (0.5, 2.0)`` a fraction above 1 never fits: the kept crops hold
    50-100 % of the area, and fractions in (1, 2] only make the fallback more likely). The
    position is uniform over the valid offsets. When no draw fits, the fallback is the largest
    central crop whose aspect ratio lies in ``ratio`` (the whole image when the image's own ratio
    does, e.g. every square image). All draws are made, whether used or not, so the generator
    advances by the same amount for every batch of ``n`` images.
    """
    area = float(height * width)
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    frac = torch.empty(n, attempts, dtype=torch.float64).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n, attempts, dtype=torch.float64).uniform_(lo, hi, generator=generator)
    pos = torch.rand(n, 2, dtype=torch.float64, generator=generator)
    r = log_r.exp()
    w = torch.round(torch.sqrt(frac * area * r)).long()
    h = torch.round(torch.sqrt(frac * area / r)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.int(), dim=1)  # index of the first fitting draw (0 when none fits)
    any_fit = fits.any(dim=1)
    rows = torch.arange(n)
    w, h = w[rows, first], h[rows, first]
    # fallback: the central crop of the image, clipped to the allowed aspect ratios
    own = width / height
    if own < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif own > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(any_fit, w, torch.full_like(w, fw))
    h = torch.where(any_fit, h, torch.full_like(h, fh))
    top = torch.floor(pos[:, 0] * (height - h + 1)).long().clamp(max=height - h)
    left = torch.floor(pos[:, 1] * (width - w + 1)).long().clamp(max=width - w)
    top = torch.where(any_fit, top, (height - h) // 2)
    left = torch.where(any_fit, left, (width - w) // 2)
    return torch.stack([top, left, h, w], dim=1)


def resized_crops(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Each image's box ``(top, left, h, w)`` cropped and resized back to the image's ``H x W``,
    mirrored left-right where ``flip`` is true: per image, the same as
    ``F.interpolate(crop, (H, W), mode="bilinear", align_corners=False)`` (output pixel ``u`` reads
    source ``left + (u + 1/2) w / W - 1/2``, clamped to the crop), done for the whole batch by one
    ``grid_sample``. A full-image box without flip returns the image (up to float rounding)."""
    n, _, height, width = x.shape

    def axis(start: torch.Tensor, size: torch.Tensor, side: int) -> torch.Tensor:
        u = torch.arange(side, dtype=torch.float64)[None, :]
        src = start[:, None] + (u + 0.5) * size[:, None] / side - 0.5
        src = torch.minimum(torch.maximum(src, start[:, None]), (start + size - 1)[:, None])
        return (2 * src + 1) / side - 1  # grid_sample's normalised coordinate (align_corners=False)

    top, left, h, w = (boxes[:, i].to(torch.float64) for i in range(4))
    gx, gy = axis(left, w, width), axis(top, h, height)
    if flip is not None:
        gx = torch.where(flip[:, None], gx.flip(-1), gx)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    grid = grid.to(device=x.device, dtype=x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 2.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
) -> torch.Tensor:
    """EDGE's training augmentation of a float batch: a random box of :func:`crop_boxes` (area
    fraction ``U(scale)`` of the image, aspect ratio in ``ratio``, central fallback) resized back to
    the image's side (the crop size is the stored side: 256 px for the paper benchmarks, as in
    EDGE), and a horizontal flip with probability ``flip_p``. Deterministic given the generator's
    state (boxes first, then the flips); the output has the input's shape, dtype and device."""
    n, _, height, width = x.shape
    boxes = crop_boxes(n, height, width, generator, scale, ratio)
    flip = torch.rand(n, generator=generator) < flip_p
    return resized_crops(x, boxes, flip)

r"""Augmented views for contrastive training (SimCLR-style), batched in torch and seeded.

Every random draw comes from the ``generator`` the training loop seeds per ``(seed, epoch)``, so
training with views stays deterministic and resumable. Inputs are model-ready (normalised by the
benchmark's ``mean``/``std``); colour operations work on pixels :math:`v = x \cdot std + mean`
clamped to [0, 1] and the result is normalised again.

Policies (:data:`POLICIES`):

* ``simclr`` (the PALM/ADAPT training views; docs/palm_adapt.md): RandomResizedCrop(scale 0.2-1,
  ratio 3/4-4/3) to the input size, horizontal flip (p 0.5), colour jitter (brightness 0.4,
  contrast 0.4, saturation 0.4, hue 0.1) with p 0.8, grayscale with p 0.2. Differences from
  torchvision: the jitter's four operations run in a fixed order (torchvision shuffles them), the
  hue shift is a rotation of the YIQ chroma plane (an approximation of HSV hue), and a crop whose
  side would exceed the image is clamped instead of re-drawn.
* ``simclr_gray`` (the embedded 28-px grey digits): a milder crop (scale 0.5-1), a shift of up to
  2 px, no flip (digits are not mirror-symmetric), brightness/contrast jitter 0.4 with p 0.8, no
  saturation, hue or grayscale (one channel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

POLICIES = {
    "simclr": dict(
        scale=(0.2, 1.0), flip=True, shift=0, jitter=(0.4, 0.4, 0.4, 0.1), p_jitter=0.8, p_gray=0.2
    ),
    "simclr_gray": dict(
        scale=(0.5, 1.0), flip=False, shift=2, jitter=(0.4, 0.4, 0.0, 0.0), p_jitter=0.8, p_gray=0.0
    ),
}

# ITU-R 601 luma (torchvision's rgb_to_grayscale) and the YIQ transform used for the hue rotation.
_LUMA = (0.299, 0.587, 0.114)
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def resized_crop(
    x: torch.Tensor,
    scale: tuple[float, float],
    gen: torch.Generator,
    flip: bool = False,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    r"""Per-image random crop of area fraction :math:`s \sim U(scale)` and aspect ratio
    :math:`r` (log-uniform in ``ratio``), resized (bilinear) to the input size; optionally mirrored
    with p 0.5. Relative side lengths :math:`w = \sqrt{s r}`, :math:`h = \sqrt{s / r}` (clamped to 1),
    the centre uniform over the positions that keep the crop inside the image."""
    n = len(x)
    s = _uniform(n, *scale, gen)
    r = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), gen))
    w, h = torch.sqrt(s * r).clamp(max=1.0), torch.sqrt(s / r).clamp(max=1.0)
    cx, cy = (1 - w) * _uniform(n, -1, 1, gen), (1 - h) * _uniform(n, -1, 1, gen)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * sign, cx, h, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gray(v: torch.Tensor) -> torch.Tensor:
    if v.shape[1] == 1:
        return v
    luma = torch.tensor(_LUMA, dtype=v.dtype, device=v.device)[None, :, None, None]
    return (v * luma).sum(1, keepdim=True)


def _hue_rotate(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma (I, Q) of YIQ by ``angle`` radians per image."""
    m = torch.tensor(_RGB2YIQ, dtype=v.dtype, device=v.device)
    yiq = torch.einsum("ij,njhw->nihw", m, v)
    c, s = torch.cos(angle)[:, None, None].to(v), torch.sin(angle)[:, None, None].to(v)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], dim=1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(m), yiq)


def color_jitter(v: torch.Tensor, strength: Sequence[float], p: float, gen: torch.Generator) -> torch.Tensor:
    r"""With probability ``p`` per image: brightness :math:`v b`, contrast
    :math:`(v - \bar g) c + \bar g` (:math:`\bar g` the image's mean luma), saturation
    :math:`(v - g) s + g` (:math:`g` the per-pixel luma), hue rotation by :math:`2\pi h`, each factor
    :math:`b, c, s \sim U(1 - t, 1 + t)`, :math:`h \sim U(-t_h, t_h)`; clamped to [0, 1] after each."""
    n = len(v)
    bri, con, sat, hue = strength
    apply = (torch.rand(n, generator=gen) < p).to(v.device)[:, None, None, None]
    b = _uniform(n, 1 - bri, 1 + bri, gen).to(v)[:, None, None, None]
    c = _uniform(n, 1 - con, 1 + con, gen).to(v)[:, None, None, None]
    s = _uniform(n, 1 - sat, 1 + sat, gen).to(v)[:, None, None, None]
    h = _uniform(n, -hue, hue, gen)
    out = (v * b).clamp(0, 1)
    mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
    out = ((out - mean) * c + mean).clamp(0, 1)
    if v.shape[1] == 3:
        g = _gray(out)
        out = ((out - g) * s + g).clamp(0, 1)
        if hue > 0:
            out = _hue_rotate(out, 2 * math.pi * h).clamp(0, 1)
    return torch.where(apply, out, v)


def random_grayscale(v: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability ``p`` per image, replace RGB by its luma repeated on the three channels."""
    pick = (torch.rand(len(v), generator=gen) < p).to(v.device)[:, None, None, None]
    return torch.where(pick, _gray(v).expand_as(v), v)


def make_view(
    x: torch.Tensor,
    policy: str,
    gen: torch.Generator,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> torch.Tensor:
    """One augmented view of the model-ready batch ``x`` under ``policy`` (see module docstring)."""
    from oodflow.training import random_shift

    if policy not in POLICIES:
        raise ValueError(f"unknown view policy '{policy}'; valid: {', '.join(POLICIES)}")
    if mean is None or std is None:
        raise ValueError("views need the benchmark's mean and std (method_args mean/std)")
    cfg = POLICIES[policy]
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    sd = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    out = resized_crop(x, cfg["scale"], gen, flip=cfg["flip"])
    out = random_shift(out, cfg["shift"], gen)
    v = (out * sd + m).clamp(0, 1)
    v = color_jitter(v, cfg["jitter"], cfg["p_jitter"], gen)
    if cfg["p_gray"] > 0 and v.shape[1] == 3:
        v = random_grayscale(v, cfg["p_gray"], gen)
    return (v - m) / sd

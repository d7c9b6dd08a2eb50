"""GAN outliers: the sample-file format, a small DCGAN trained on the ID data, and its sampling.

Kirchheim & Ortmeier (NeurIPS MLSW 2022) obtain outliers by sampling a GAN with a latent of
inflated variance, :math:`z \\sim \\mathcal{N}(0, \\sigma^2 I)`; AOE (Botschen et al., CVPRW 2025) trains on
such samples. The published files cover only 32x32 CIFAR-like data, so the workflow also trains a
small DCGAN on any ID training set (rule ``train_gan``) and samples it (rule ``sample_gan``) into the
same format.

Sample-file format (:func:`load_gan_samples`): an ``.npz`` with ``x`` uint8 ``(N, C, H, W)``
(channels first, pixel values 0..255) and optionally ``y`` (``(N,)`` integers, unused; ours are
``-1``); loaded with ``allow_pickle=False``.

DCGAN (Radford et al. 2016): the generator maps :math:`z \\in \\mathbb{R}^d` through a transposed
convolution to a ``base x base`` map (``base`` = 7 for 28 px, 4 for 32/64 px), then doubles the side
with stride-2 transposed convolutions (BatchNorm + ReLU between) to ``C x H x W`` with a **Sigmoid**
output in [0, 1] (the images are ``v / 255``, not mean/std-normalised). The discriminator mirrors it
with stride-2 convolutions and LeakyReLU(0.2) and outputs a logit. Both use N(0, 0.02) weights. The
non-saturating loss: :math:`L_D = \\mathrm{BCE}(D(x), 1) + \\mathrm{BCE}(D(G(z)), 0)`,
:math:`L_G = \\mathrm{BCE}(D(G(z)), 1)`, Adam(lr, betas (0.5, 0.999)).

Everything random in epoch ``e`` (batch order, latents) is drawn from generators seeded by
``(seed, e)``, so a run resumed from its per-epoch checkpoint ends with the same weights.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import FormatError, load_npz

#: Side of the first feature map of the generator, by image side.
BASE_SIDE = {28: 7, 32: 4, 64: 4}
LOG_FIELDS = ("epoch", "loss_d", "loss_g", "d_real", "d_fake")


def format_sigma(sigma: float) -> str:
    """The file-name form of a latent standard deviation: ``2`` -> ``"2.0"`` (as in ``samples-2.0.npz``)."""
    value = float(sigma)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    return repr(value)


# ------------------------------------------------------------------------------------ format
def check_gan_samples(arrays: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """Return ``x`` of a sample file's arrays, or raise :class:`FormatError` naming ``where``."""
    if "x" not in arrays:
        raise FormatError(f"{where}: missing array 'x' (has: {', '.join(sorted(arrays)) or 'none'})")
    extra = sorted(set(arrays) - {"x", "y"})
    if extra:
        raise FormatError(f"{where}: unexpected arrays {', '.join(extra)} (a sample file holds x and y)")
    x = arrays["x"]
    if x.dtype != np.uint8:
        raise FormatError(f"{where}: 'x' must be uint8 pixel values 0..255, got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3] or len(x) == 0:
        raise FormatError(
            f"{where}: 'x' must have shape (N, C, H, W) with C in (1, 3), H = W, N > 0, got {x.shape}"
        )
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise FormatError(f"{where}: 'y' must be {len(x)} integers, got {y.dtype} {y.shape}")
    return x


def load_gan_samples(path: str | Path, image_shape: tuple[int, int, int] | None = (3, 32, 32)) -> np.ndarray:
    """Read a GAN sample file safely; return ``x`` uint8 ``(N, C, H, W)``.

    ``image_shape`` is the required ``(C, H, W)`` (default: the published files' ``(3, 32, 32)``;
    ``None`` accepts any grey or RGB square images). Nothing is unpickled: object arrays are refused.
    """
    x = check_gan_samples(load_npz(path), str(path))
    if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
        dims = ", ".join(map(str, image_shape))
        raise FormatError(f"{path}: 'x' must have shape (N, {dims}), got {x.shape}")
    return x


def stored_form(x: np.ndarray) -> np.ndarray:
    """Channels-first samples -> the stored-set form: ``(N, H, W)`` grey, ``(N, H, W, C)`` RGB."""
    return np.ascontiguousarray(x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1))


def channels_first(x: np.ndarray) -> np.ndarray:
    """Stored-set images (``(N, H, W)`` or ``(N, H, W, C)``) -> ``(N, C, H, W)``."""
    return np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------------ networks
def _networks():
    import torch
    from torch import nn

    def init(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    def layout(size: int, width: int) -> tuple[int, int]:
        if size not in BASE_SIDE:
            raise ValueError(f"DCGAN supports images of side {sorted(BASE_SIDE)}, got {size}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        return BASE_SIDE[size], int(round(math.log2(size // BASE_SIDE[size])))

    class Generator(nn.Module):
        """:math:`z` ``(N, latent_dim)`` -> images ``(N, channels, size, size)`` in [0, 1]."""

        def __init__(self, channels: int, size: int, latent_dim: int = 64, width: int = 16) -> None:
            super().__init__()
            base, n_up = layout(size, width)
            self.latent_dim, ch = latent_dim, width * 2 ** (n_up - 1)
            layers: list[nn.Module] = [
                nn.ConvTranspose2d(latent_dim, ch, base, 1, 0, bias=False),
                nn.BatchNorm2d(ch),
                nn.ReLU(True),
            ]
            for _ in range(n_up - 1):
                layers += [
                    nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(ch // 2),
                    nn.ReLU(True),
                ]
                ch //= 2
            layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Sigmoid()]
            self.net = nn.Sequential(*layers)
            self.apply(init)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.net(z.view(len(z), self.latent_dim, 1, 1))

    class Discriminator(nn.Module):
        """Images ``(N, channels, size, size)`` in [0, 1] -> real-vs-fake logits ``(N,)``."""

        def __init__(self, channels: int, size: int, width: int = 16) -> None:
            super().__init__()
            base, n_down = layout(size, width)
            ch = width
            layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            for _ in range(n_down - 1):
                layers += [
                    nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(ch * 2),
                    nn.LeakyReLU(0.2, True),
                ]
                ch *= 2
            layers.append(nn.Conv2d(ch, 1, base, 1, 0))
            self.net = nn.Sequential(*layers)
            self.apply(init)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x).flatten()

    return Generator, Discriminator


def build_generator(channels: int, size: int, latent_dim: int = 64, width: int = 16):
    return _networks()[0](channels, size, latent_dim, width)


def build_discriminator(channels: int, size: int, width: int = 16):
    return _networks()[1](channels, size, width)


# ------------------------------------------------------------------------------------ training
def train_gan(
    images: np.ndarray,
    gan: Mapping[str, Any],
    seed: int,
    *,
    device: Any = "cpu",
    checkpoint_path: str | Path | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> tuple[Any, list[dict[str, float]]]:
    """Train a DCGAN on uint8 ``images`` ``(N, C, H, W)``; return (generator in eval mode, log rows).

    ``gan`` holds ``epochs``, ``batch_size``, ``lr``, ``latent_dim`` and ``width`` (config
    ``benchmark.gan``). With ``checkpoint_path``, the state is saved after every epoch and a
    checkpoint of the same ``(gan, seed)`` is resumed.
    """
    import torch
    import torch.nn.functional as F

    from oodflow import checkpoint
    from oodflow.seeding import derive_seed

    keys = ("epochs", "batch_size", "lr", "latent_dim", "width")
    config = {
        "seed": int(seed),
        "gan": {k: gan[k] for k in keys},
        "shape": [int(s) for s in images.shape[1:]],
    }
    channels, size = int(images.shape[1]), int(images.shape[2])
    torch.manual_seed(derive_seed(seed, "gan-init"))
    gen = build_generator(channels, size, gan["latent_dim"], gan["width"]).to(device)
    disc = build_discriminator(channels, size, gan["width"]).to(device)
    betas = (0.5, 0.999)
    opt_g = torch.optim.Adam(gen.parameters(), lr=gan["lr"], betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=gan["lr"], betas=betas)
    data = torch.from_numpy(images).float().div_(255.0)
    rows: list[dict[str, float]] = []
    start = 0
    state = checkpoint.load_matching(checkpoint_path, config, map_location=device, log=log)
    parts = {"model": gen, "discriminator": disc, "opt_g": opt_g, "opt_d": opt_d}
    if state is not None:
        rows, start = checkpoint.resume(state, parts)
        log(f"resuming the GAN from {checkpoint_path} after epoch {start}")
    bs = gan["batch_size"]
    for epoch in range(start, gan["epochs"]):
        rng = torch.Generator().manual_seed(derive_seed(seed, "gan-batches", epoch))
        order = torch.randperm(len(data), generator=rng)
        gen.train()
        disc.train()
        sums = dict.fromkeys(LOG_FIELDS[1:], 0.0)
        for i in range(0, len(order), bs):
            real = data[order[i : i + bs]].to(device)
            n = len(real)
            z = torch.randn(n, gan["latent_dim"], generator=rng).to(device)
            fake = gen(z)
            d_real, d_fake = disc(real), disc(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d_gen = disc(fake)
            loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sums["loss_d"] += float(loss_d.detach()) * n
            sums["loss_g"] += float(loss_g.detach()) * n
            sums["d_real"] += float(torch.sigmoid(d_real.detach()).sum())
            sums["d_fake"] += float(torch.sigmoid(d_fake.detach()).sum())
        row = {"epoch": epoch + 1, **{k: v / len(data) for k, v in sums.items()}}
        rows.append(row)
        log("gan " + ", ".join(f"{k}={v:.6g}" for k, v in row.items()))
        if checkpoint_path is not None:
            checkpoint.save_epoch(checkpoint_path, config, epoch, rows, parts)
    return gen.eval(), rows


def generator_from_checkpoint(path: str | Path, device: Any = "cpu"):
    """Rebuild the generator of a ``generator.pt`` written by :func:`oodflow.steps.train_gan`."""
    from oodflow import checkpoint

    payload = checkpoint.load(path, map_location=device)
    cfg = payload["config"]
    try:
        channels, size = cfg["shape"][0], cfg["shape"][1]
        gen = build_generator(channels, size, cfg["gan"]["latent_dim"], cfg["gan"]["width"])
        gen.load_state_dict(payload["model"])
    except (KeyError, IndexError, RuntimeError) as err:
        raise FormatError(f"{path}: not a GAN generator checkpoint ({err})") from None
    return gen.to(device).eval(), payload


def sample(generator: Any, count: int, sigma: float, seed: int, batch_size: int = 500) -> np.ndarray:
    """``count`` images of ``generator`` (eval mode) at latents :math:`z = \\sigma \\epsilon`,
    :math:`\\epsilon \\sim \\mathcal{N}(0, I)` seeded by ``(seed, sigma)``; uint8 ``(N, C, H, W)``,
    :math:`\\mathrm{round}(255\\, G(z))`. ``sigma = 0`` gives ``count`` copies of :math:`G(0)`."""
    import torch

    from oodflow.seeding import derive_seed

    rng = torch.Generator().manual_seed(derive_seed(seed, "gan-sample", format_sigma(sigma)))
    device = next(generator.parameters()).device
    generator.eval()
    eps = torch.randn(count, generator.latent_dim, generator=rng)  # all at once: batch-size independent
    parts = []
    with torch.inference_mode():
        for i in range(0, count, batch_size):
            x = generator((eps[i : i + batch_size] * float(sigma)).to(device))
            parts.append(torch.round(x.clamp(0, 1) * 255).to(torch.uint8).cpu().numpy())
    return np.concatenate(parts)

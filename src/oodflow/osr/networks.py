"""Networks of DIAS / ARPL (docs/osr.md), with a ``width`` knob for CPU runs.

* :class:`Classifier32` (``classifier32ABN``): nine bias-free 3x3 convolutions in three blocks
  (64, 64, 128/2 | 128, 128, 128/2 | 128, 128, 128/2 channels at ``width`` 1; ``/2`` = stride 2),
  Dropout2d(0.2) before each block, every convolution followed by a :class:`MultiBatchNorm` and
  LeakyReLU(0.2); global average pooling to a ``128*width``-d embedding and ``fc`` (no bias).
  Initialisation as the reference: conv ``N(0, 0.05)``, BN weight ``N(1, 0.02)``, BN bias 0.
* :class:`MultiBatchNorm` (ABN): one BatchNorm2d per branch; the *whole batch* goes through the
  branch given by ``bn`` (0 = real images, 1 = GAN fakes), so fakes never touch the real images'
  running statistics.
* :class:`Generator32`: DCGAN, latent ``nz x 1 x 1`` -> ``3 x 32 x 32`` in [0, 1] (Sigmoid), matching the
  unnormalised inputs. :class:`Discriminator32`: conv 3->2d s2, LReLU; 2d->4d s2, BN, LReLU; 4d->8d s2,
  BN, LReLU; 8d->16d 4x4, Sigmoid; average pool; Linear(16d, 1); Sigmoid (``d = 64*width``).
  Both initialised DCGAN-style: conv ``N(0, 0.02)``, BN weight ``N(1, 0.02)``, bias 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from oodflow.models.base import scale_channels

NZ = 100  # latent size of the generator (the reference's nz)


class MultiBatchNorm(nn.Module):
    """``branches`` BatchNorm2d layers; :meth:`forward` normalises the batch with branch ``bn``."""

    def __init__(self, num_features: int, branches: int = 2) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(num_features) for _ in range(branches))

    def forward(self, x: torch.Tensor, bn: int = 0) -> torch.Tensor:
        if not 0 <= bn < len(self.bns):
            raise ValueError(f"batch-norm branch {bn} of {len(self.bns)}")
        return self.bns[bn](x)


#: (in, out, stride) of the nine convolutions at width 1; ``3`` is the input.
_CONVS = ((3, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 2),
          (128, 128, 1), (128, 128, 1), (128, 128, 2))  # fmt: skip


class Classifier32(nn.Module):
    """``classifier32`` with two-branch batch norm; see the module docstring.

    ``forward(x, bn)`` gives logits; :meth:`parts` also gives the features after block 1 and block 2
    (what DIAS's copycat imitates) and the pooled embedding (ARPL's feature, the feature cache's).
    """

    def __init__(self, num_classes: int, width: float = 1.0, branches: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        if num_classes < 1 or not width > 0:
            raise ValueError(f"classifier32 needs num_classes >= 1 and width > 0, got {num_classes}, {width}")
        ch = lambda c: c if c == 3 else scale_channels(c, width)  # noqa: E731
        self.convs = nn.ModuleList(nn.Conv2d(ch(i), ch(o), 3, s, 1, bias=False) for i, o, s in _CONVS)
        self.bns = nn.ModuleList(MultiBatchNorm(ch(o), branches) for _, o, _ in _CONVS)
        self.drop = nn.Dropout2d(dropout)
        self.feature_dim = ch(128)
        self.fc = nn.Linear(self.feature_dim, num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.05)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def block(self, index: int, x: torch.Tensor, bn: int = 0) -> torch.Tensor:
        """Block ``index`` (0, 1, 2): dropout, then three conv-BN-LReLU layers."""
        x = self.drop(x)
        for i in range(3 * index, 3 * index + 3):
            x = F.leaky_relu(self.bns[i](self.convs[i](x), bn), 0.2)
        return x

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        """Global average pooling (a mean: its CUDA backward is deterministic, adaptive pooling's is not)."""
        return x.mean((2, 3))

    def parts(
        self, x: torch.Tensor, bn: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(block-1 features, block-2 features, embedding, logits)``."""
        f1 = self.block(0, x, bn)
        f2 = self.block(1, f1, bn)
        g = self.pool(self.block(2, f2, bn))
        return f1, f2, g, self.fc(g)

    def embed(self, x: torch.Tensor, bn: int = 0) -> torch.Tensor:
        return self.parts(x, bn)[2]

    def forward(self, x: torch.Tensor, bn: int = 0) -> torch.Tensor:
        return self.parts(x, bn)[3]

    def from_block2(self, f1: torch.Tensor, bn: int = 0) -> torch.Tensor:
        """Logits of block-1 features fed into blocks 2 and 3 (DIAS's hard fakes)."""
        return self.fc(self.pool(self.block(2, self.block(1, f1, bn), bn)))

    def from_block3(self, f2: torch.Tensor, bn: int = 0) -> torch.Tensor:
        """Logits of block-2 features fed into block 3."""
        return self.fc(self.pool(self.block(2, f2, bn)))


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator32(nn.Module):
    """DCGAN generator: ``(N, nz, 1, 1)`` -> ``(N, 3, 32, 32)`` in [0, 1] (``ngf = 64*width``)."""

    def __init__(self, width: float = 1.0, nz: int = NZ) -> None:
        super().__init__()
        g = scale_channels(64, width)
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, 8 * g, 4, 1, 0, bias=False),
            nn.BatchNorm2d(8 * g),
            nn.ReLU(True),
            nn.ConvTranspose2d(8 * g, 4 * g, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * g),
            nn.ReLU(True),
            nn.ConvTranspose2d(4 * g, 2 * g, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * g),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * g, 3, 4, 2, 1, bias=False),
            nn.Sigmoid(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator32(nn.Module):
    """DCGAN discriminator of section 3.3: ``(N, 3, 32, 32)`` -> probability of "real" ``(N,)``."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        d = scale_channels(64, width)
        self.main = nn.Sequential(
            nn.Conv2d(3, 2 * d, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * d, 4 * d, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * d),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * d, 8 * d, 4, 2, 1, bias=False),
            nn.BatchNorm2d(8 * d),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * d, 16 * d, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )
        self.classifier = nn.Sequential(nn.Linear(16 * d, 1), nn.Sigmoid())
        _dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.main(x).mean((2, 3))  # global average pooling
        return self.classifier(h).flatten()

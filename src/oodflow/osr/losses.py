"""Losses of the OSR methods: label-smoothed CE and the copycat terms (DIAS), ARPL's reciprocal points.

The spine's ``arpl`` and ``dias`` training methods (:mod:`oodflow.methods.open_set`) use these too.

Facts on ARPL from its paper (Chen et al., TPAMI 2021) and ``iCGY96/ARPL`` (``ARPLoss``, ``Dist``),
re-implemented here in our own words.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def smooth_ce(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""DIAS's smoothed cross-entropy, averaged over the batch:

    .. math:: -\sum_k \big[(1-\alpha)\,\mathrm{onehot}(y)_k + \alpha/K\big] \log\mathrm{softmax}(z)_k

    ``alpha = 0`` is plain CE; ``alpha = 1`` is CE to the uniform distribution (labels unused).
    """
    k = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    target = alpha / k + (1.0 - alpha) * F.one_hot(y, k).to(logp.dtype)
    return -(target * logp).sum(1).mean()


def feature_pull(copies: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...]) -> torch.Tensor:
    r"""DIAS's pull of the copycat's intermediate features to the classifier's (docs/osr.md), the
    mean of the per-block L1 losses: :math:`\frac{1}{2}(L_1(f_1^{cc}, f_1) + L_1(f_2^{cc}, f_2))`."""
    f1c, f2c = copies
    f1, f2 = targets
    return 0.5 * (F.l1_loss(f1c, f1) + F.l1_loss(f2c, f2))


def simulated_term(
    hard1: torch.Tensor,
    hard2: torch.Tensor,
    easy: torch.Tensor,
    y: torch.Tensor,
    smoothing: float,
    smoothing2: float,
) -> torch.Tensor:
    r"""DIAS's term of the simulated (copycat) features, from the classifier's logits of the hard
    fakes (copycat block-1 features through blocks 2-3; block-2 features through block 3) and of
    the easy fakes (the copycat's embedding through the classifier's last layer):

    .. math:: \frac{1}{3}\big(\mathrm{SCE}_{\alpha}(z^{h1}) + \mathrm{SCE}_{\alpha}(z^{h2})
        + \mathrm{SCE}_{\alpha_2}(z^{e})\big)

    with :func:`smooth_ce` of ``smoothing`` :math:`\alpha` and ``smoothing2`` :math:`\alpha_2`."""
    hard1 = smooth_ce(hard1, y, smoothing)
    hard2 = smooth_ce(hard2, y, smoothing)
    easy = smooth_ce(easy, y, smoothing2)
    return (hard1 + hard2 + easy) / 3.0


class ReciprocalPoints(nn.Module):
    r"""ARPL's criterion: one learnable reciprocal point :math:`P_k \in R^D` per class and a radius R.

    * distances: :math:`d^{l2}_k(g) = \lVert g - P_k\rVert^2 / D` (mean over the feature dimension) and
      :math:`d^{dot}_k(g) = g \cdot P_k`;
    * logits: :math:`z_k = d^{l2}_k - d^{dot}_k` (far from class k's reciprocal point = class k);
    * loss: :math:`CE(z / T, y) + w_{pl}\,\mathrm{mean}\,\max(0, d^{l2}_y - R + 1)`, the margin-ranking
      term (margin 1, target +1) that ties the distance to the true class's point to the radius R;
    * confusing-sample loss (ARPL+CS) of fakes: :math:`\exp(\mathrm{mean}_i \sum_k p_{ik}\log p_{ik})`,
      ``p = softmax(d^{l2})``: exp of minus the mean entropy, small when fakes are ambiguous.

    Points start at ``0.1 * N(0, 1)`` and the radius at 0, as in the reference.
    """

    def __init__(self, num_classes: int, feat_dim: int, weight_pl: float = 0.1, temp: float = 1.0) -> None:
        super().__init__()
        self.points = nn.Parameter(0.1 * torch.randn(num_classes, feat_dim))
        self.radius = nn.Parameter(torch.zeros(1))
        self.weight_pl, self.temp = weight_pl, temp

    def l2(self, g: torch.Tensor) -> torch.Tensor:
        p = self.points
        d = (g * g).sum(1, keepdim=True) - 2.0 * g @ p.T + (p * p).sum(1)[None, :]
        return d / g.shape[1]

    def logits(self, g: torch.Tensor) -> torch.Tensor:
        return self.l2(g) - g @ self.points.T

    def margin_term(self, g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        known = (g - self.points[y]).pow(2).mean(1)
        return F.relu(known - self.radius + 1.0).mean()

    def loss(self, g: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, logits)`` of embeddings ``g`` with labels ``y``."""
        z = self.logits(g)
        return F.cross_entropy(z / self.temp, y) + self.weight_pl * self.margin_term(g, y), z

    def fake_loss(self, g: torch.Tensor) -> torch.Tensor:
        p = F.softmax(self.l2(g), dim=1)
        return (p * torch.log(p)).sum(1).mean().exp()

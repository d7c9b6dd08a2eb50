"""Outlier exposure objectives: train on ID batches plus a batch of auxiliary outliers.

Both methods take the ID batch ``(x, y)`` and an outlier batch ``x_aux`` and run the model once on
their concatenation (so batch norm sees both, as in the references). Each term is averaged over its
own part of the batch (Hendrycks et al.; Liu et al.), not over the concatenated batch as
pytorch-ood's losses do (docs/references.md); :func:`oe_objective` offers both reductions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def joint_forward(
    model: nn.Module, x: torch.Tensor, x_aux: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits of x, logits of x_aux)`` of one forward pass over their concatenation."""
    if x_aux is None:
        raise ValueError("this method needs a batch of auxiliary outliers (x_aux)")
    logits = model(torch.cat([x, x_aux]))
    return logits[: len(x)], logits[len(x) :]


def oe_term(logits_out: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy of outlier logits to the uniform distribution (minimum :math:`\log K`):
    :math:`\frac{1}{B}\sum_i \big(\operatorname{lse}_k f_k(x_i) - \frac{1}{K}\sum_k f_k(x_i)\big)`."""
    return (torch.logsumexp(logits_out, dim=1) - logits_out.mean(dim=1)).mean()


OE_LOSSES = ("hendrycks", "pytorch_ood")


def oe_objective(
    logits_in: torch.Tensor,
    y: torch.Tensor,
    logits_out: torch.Tensor,
    lam: float = 0.5,
    reduction: str = "hendrycks",
) -> torch.Tensor:
    r"""The outlier-exposure loss on ID logits (labels ``y``) and outlier logits.

    With :math:`u_j = \operatorname{lse} f(x_j) - \overline{f(x_j)}` per outlier:

    * ``"hendrycks"`` (the OE paper and code): each term averaged over its own part of the batch,
      :math:`\frac{1}{B_{in}}\sum_i \mathrm{CE}_i + \lambda \frac{1}{B_{out}}\sum_j u_j`;
    * ``"pytorch_ood"`` (pytorch-ood ``OutlierExposureLoss``, used by AOE; docs/references.md):
      one mean over the concatenated batch, :math:`\frac{\sum_i \mathrm{CE}_i + \lambda \sum_j u_j}
      {B_{in} + B_{out}}`; with equal batch sizes this is half the Hendrycks value.
    """
    if reduction == "hendrycks":
        return F.cross_entropy(logits_in, y) + lam * oe_term(logits_out)
    if reduction == "pytorch_ood":
        u = torch.logsumexp(logits_out, dim=1) - logits_out.mean(dim=1)
        total = F.cross_entropy(logits_in, y, reduction="sum") + lam * u.sum()
        return total / (len(logits_in) + len(logits_out))
    raise ValueError(f"unknown OE loss reduction '{reduction}'; valid: {', '.join(OE_LOSSES)}")


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""Free energy :math:`E(x) = -T \operatorname{lse}_k f_k(x) / T` (lower = more ID)."""
    return -temperature * torch.logsumexp(logits / temperature, dim=1)


class OutlierExposure:
    r"""Hendrycks, Mazeika, Dietterich, "Deep anomaly detection with outlier exposure", ICLR 2019.

    .. math::
        L = \frac{1}{B_{in}} \sum \mathrm{CE}(f(x_{in}), y)
            + \lambda \frac{1}{B_{out}} \sum \big(\operatorname{lse} f(x_{out}) - \overline{f(x_{out})}\big)

    Args:
        lam: weight :math:`\lambda` of the outlier term (0.5 in the paper).
        aux_batch_size: outliers per step (the reference uses twice the ID batch).
        oe_loss: ``"hendrycks"`` (above) or ``"pytorch_ood"``, the mean over the concatenated batch
            that AOE trains with (see :func:`oe_objective`).
    """

    uses_aux = True

    def __init__(self, lam: float = 0.5, aux_batch_size: int = 128, oe_loss: str = "hendrycks") -> None:
        if lam < 0 or aux_batch_size < 1:
            raise ValueError(f"need lam >= 0 and aux_batch_size >= 1, got {lam}, {aux_batch_size}")
        if oe_loss not in OE_LOSSES:
            raise ValueError(f"unknown oe_loss '{oe_loss}'; valid: {', '.join(OE_LOSSES)}")
        self.lam, self.aux_batch_size, self.oe_loss = lam, aux_batch_size, oe_loss

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, ID logits) for one batch."""
        logits_in, logits_out = joint_forward(model, x, x_aux)
        return oe_objective(logits_in, y, logits_out, self.lam, self.oe_loss), logits_in


class EnergyFineTune:
    r"""Liu, Wang, Owens, Li, "Energy-based out-of-distribution detection", NeurIPS 2020.

    .. math::
        L = \mathrm{CE} + \lambda_E \Big( \frac{1}{B_{in}}\sum \operatorname{relu}(E(x_{in}) - m_{in})^2
            + \frac{1}{B_{out}}\sum \operatorname{relu}(m_{out} - E(x_{out}))^2 \Big)

    ID energies above ``m_in`` and outlier energies below ``m_out`` are penalised (``m_in < m_out``;
    the reference's defaults are -25 and -7, its CIFAR-10 run uses -23 and -5).

    Args:
        lam: weight :math:`\lambda_E` (0.1).
        m_in, m_out: the energy margins.
        aux_batch_size: outliers per step.
    """

    uses_aux = True

    def __init__(
        self, lam: float = 0.1, m_in: float = -25.0, m_out: float = -7.0, aux_batch_size: int = 128
    ) -> None:
        if not m_in < m_out:
            raise ValueError(f"m_in must be below m_out, got m_in={m_in}, m_out={m_out}")
        if lam < 0 or aux_batch_size < 1:
            raise ValueError(f"need lam >= 0 and aux_batch_size >= 1, got {lam}, {aux_batch_size}")
        self.lam, self.m_in, self.m_out, self.aux_batch_size = lam, m_in, m_out, aux_batch_size

    def regulariser(self, logits_in: torch.Tensor, logits_out: torch.Tensor) -> torch.Tensor:
        """The squared-hinge energy term (without :math:`\\lambda_E`)."""
        e_in, e_out = energy(logits_in), energy(logits_out)
        return F.relu(e_in - self.m_in).pow(2).mean() + F.relu(self.m_out - e_out).pow(2).mean()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, ID logits) for one batch."""
        logits_in, logits_out = joint_forward(model, x, x_aux)
        loss = F.cross_entropy(logits_in, y) + self.lam * self.regulariser(logits_in, logits_out)
        return loss, logits_in

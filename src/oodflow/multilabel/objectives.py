"""Multi-label training objectives by name: ``bce``, ``oe_ml``, ``energy_ml`` and ``edge``.

Every objective is called with the logits of one forward pass over the concatenated batch
(``logits_in`` of the B_in ID images, ``logits_out`` of the B_out OE images; ``None`` for ``bce``),
the multi-hot float targets ``y`` (B_in, C) and the epoch (0-based), and returns the scalar loss.
``BCE`` below is ``BCEWithLogits`` averaged over all B_in x C entries (the reference's criterion).

Notation: :math:`S(x) = \\sum_j \\operatorname{softplus}(z_j(x))` is the JointEnergy (higher = more
ID) and :math:`E(x) = -\\operatorname{lse}_j z_j(x)` the free energy over labels (lower = more ID).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def joint_energy(logits: torch.Tensor) -> torch.Tensor:
    """:math:`S = \\sum_j \\operatorname{softplus}(z_j)` per row; softplus, never ``log(1+exp)``."""
    return F.softplus(logits).sum(dim=1)


def bce(logits_in: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits_in, y.to(logits_in.dtype))


def _need_out(logits_out: torch.Tensor | None, name: str) -> torch.Tensor:
    if logits_out is None:
        raise ValueError(f"objective '{name}' needs a batch of OE images (logits_out)")
    return logits_out


class BCE:
    """Baseline: :math:`L = \\mathrm{BCE}(z_{in}, y)`."""

    uses_oe = False

    def __call__(self, logits_in, y, logits_out=None, epoch: int = 0) -> torch.Tensor:
        return bce(logits_in, y)


class OutlierExposureML:
    """EDGE's ``OEML`` baseline (Hendrycks et al.'s OE term on label logits, with BCE on ID):

    .. math:: L = \\mathrm{BCE} + \\lambda \\frac{1}{B_{out}} \\sum_i
        \\big(\\operatorname{lse}_j z_{ij} - \\tfrac{1}{C}\\sum_j z_{ij}\\big)

    (cross-entropy of the softmax over labels to the uniform distribution, minus :math:`\\log C`).

    Args:
        lam: :math:`\\lambda` (0.5 in the reference).
    """

    uses_oe = True

    def __init__(self, lam: float = 0.5) -> None:
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam

    def __call__(self, logits_in, y, logits_out=None, epoch: int = 0) -> torch.Tensor:
        out = _need_out(logits_out, "oe_ml")
        uniform_ce = (torch.logsumexp(out, dim=1) - out.mean(dim=1)).mean()
        return bce(logits_in, y) + self.lam * uniform_ce


class EnergyML:
    """EDGE's ``energyML`` baseline (Liu et al.'s energy margins, with BCE on ID):

    .. math:: L = \\mathrm{BCE} + \\lambda \\Big( \\frac{1}{B_{in}}\\sum \\operatorname{relu}(E(x_{in})
        - m_{in})^2 + \\frac{1}{B_{out}}\\sum \\operatorname{relu}(m_{out} - E(x_{out}))^2 \\Big),
        \\quad E = -\\operatorname{lse}_j z_j

    Signs: ID energies *above* ``m_in`` and OE energies *below* ``m_out`` are penalised, so a useful
    pair has ``m_in < m_out``, both usually negative (Liu et al.: -25 / -7, our defaults). QUIRK:
    EDGE's argparse defaults are ``m_in = +25, m_out = +7`` (its help text says -25 / -7); with
    them the ID term is nearly always zero. Pass ``m_in: 25, m_out: 7`` to reproduce that.

    Args:
        lam: :math:`\\lambda` (0.1 in the reference).
        m_in, m_out: the energy margins.
    """

    uses_oe = True

    def __init__(self, lam: float = 0.1, m_in: float = -25.0, m_out: float = -7.0) -> None:
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam, self.m_in, self.m_out = lam, m_in, m_out

    def __call__(self, logits_in, y, logits_out=None, epoch: int = 0) -> torch.Tensor:
        out = _need_out(logits_out, "energy_ml")
        e_in, e_out = -torch.logsumexp(logits_in, dim=1), -torch.logsumexp(out, dim=1)
        reg = F.relu(e_in - self.m_in).pow(2).mean() + F.relu(self.m_out - e_out).pow(2).mean()
        return bce(logits_in, y) + self.lam * reg


def edge_terms(
    logits_in: torch.Tensor, y: torch.Tensor, logits_out: torch.Tensor, k: int, m: float
) -> dict[str, torch.Tensor]:
    """The three EDGE terms (``weg.py`` of ``Yuchen-Sunflower/EDGE@6cce68fa``):

    * ``id``: :math:`\\mathrm{BCE}(z_{in}, y)`;
    * ``conf``: :math:`\\frac{1}{B_{out} C}\\sum_{i,j} -\\log(1 - \\sigma(z^{out}_{ij}))
      = \\operatorname{mean}\\, \\operatorname{softplus}(z_{out})`;
    * ``gap``: :math:`\\frac{1}{B_{out} k}\\sum_{i \\in out}\\sum_{t \\in T}
      \\operatorname{relu}(S(x^{out}_i) - S(x^{in}_t) + m)`, where :math:`T` holds the ``k`` ID images
      of the batch with the smallest JointEnergy (``min(k, B_in)`` when the batch is smaller).

    Gradients flow through both sides of the hinge (the tail ID energies are not detached, as in
    the reference), and only through the ``k`` selected ID images.
    """
    s_in, s_out = joint_energy(logits_in), joint_energy(logits_out)
    tail = -torch.topk(-s_in, min(k, len(s_in))).values
    return {
        "id": bce(logits_in, y),
        "conf": F.softplus(logits_out).mean(),
        "gap": F.relu(s_out[:, None] - tail[None, :] + m).mean(),
    }


class EDGE:
    """EDGE (Sun et al., AAAI 2025): :math:`L = L_{id} + \\alpha L_{conf} + \\beta(e) L_{gap}`
    (terms in :func:`edge_terms`), :math:`\\beta(e) = 0` for epochs :math:`e <` ``start_epoch``
    (0-based, as the reference's loop counter) and ``beta`` from then on.

    Args:
        alpha: weight of the OE confidence term (1).
        beta: weight of the gap term once active (``energy_beta``, 0.1).
        k: number of bottom-JointEnergy ("tail") ID images per batch (paper setting 32).
        m: hinge margin (paper setting 0; argparse default 1).
        start_epoch: first epoch with the gap term (paper setting 50 of 100).
    """

    uses_oe = True

    def __init__(
        self, alpha: float = 1.0, beta: float = 0.1, k: int = 32, m: float = 0.0, start_epoch: int = 0
    ) -> None:
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha}, {beta}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0, got {start_epoch}")
        self.alpha, self.beta, self.k, self.m, self.start_epoch = alpha, beta, k, m, start_epoch

    def beta_at(self, epoch: int) -> float:
        return self.beta if epoch >= self.start_epoch else 0.0

    def __call__(self, logits_in, y, logits_out=None, epoch: int = 0) -> torch.Tensor:
        t = edge_terms(logits_in, y, _need_out(logits_out, "edge"), self.k, self.m)
        loss = t["id"] + self.alpha * t["conf"]
        beta = self.beta_at(epoch)
        return loss + beta * t["gap"] if beta > 0 else loss


def build_objective(name: str, **kwargs):
    """Instantiate the multi-label objective ``name`` with its keyword arguments."""
    from oodflow.multilabel import ML_OBJECTIVES

    cls = ML_OBJECTIVES.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"multi-label objective '{name}': {err}") from None

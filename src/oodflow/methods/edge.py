r"""The multi-label paper's objective (EDGE, Sun et al., AAAI 2025; ``Yuchen-Sunflower/EDGE@6cce68fa``)
as a spine method: single-label data as one-hot multi-label targets.

A single-label image is the multi-label case with exactly one positive label: with
:math:`t = \mathrm{onehot}(y) \in \{0, 1\}^K` the objective of
:class:`oodflow.multilabel.objectives.EDGE` (reused, not copied) applies unchanged to the spine
model's logits of the ID batch and of a batch of the auxiliary outlier pool (one forward pass over
their concatenation, as outlier exposure):

.. math:: L = \mathrm{BCE}(z_{in}, t) + \alpha\,\operatorname{mean}\operatorname{softplus}(z_{out})
    + \beta(e)\,\frac{1}{B_{out} k}\sum_{i \in out}\sum_{j \in T}
    \operatorname{relu}\big(S(x^{out}_i) - S(x^{in}_j) + m\big)

with the JointEnergy :math:`S(x) = \sum_k \operatorname{softplus}(z_k(x))`, :math:`T` the ``k`` ID
images of the batch with the lowest :math:`S`, and :math:`\beta(e) = 0` before ``start_epoch``
(counted from the first epoch of this run; a fine-tuned run counts its own epochs). The matching
score is the spine's ``joint_energy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from oodflow.methods.outlier_exposure import joint_forward
from oodflow.multilabel.objectives import EDGE as MultiLabelEDGE


class EDGE:
    """EDGE on one-hot targets; arguments as :class:`oodflow.multilabel.objectives.EDGE` plus
    ``aux_batch_size`` (outliers per step, as OE).

    Args:
        alpha: weight of the outlier confidence term (1).
        beta: weight of the energy-gap term once active (0.1).
        k: bottom-JointEnergy ID images per batch (32; all of a smaller batch).
        m: hinge margin (0).
        start_epoch: first epoch (0-based) with the gap term.
        aux_batch_size: outliers per step.
    """

    uses_aux = True

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.1,
        k: int = 32,
        m: float = 0.0,
        start_epoch: int = 0,
        aux_batch_size: int = 128,
    ) -> None:
        if isinstance(aux_batch_size, bool) or not isinstance(aux_batch_size, int) or aux_batch_size < 1:
            raise ValueError(f"aux_batch_size must be a positive integer, got {aux_batch_size!r}")
        self.objective = MultiLabelEDGE(alpha=alpha, beta=beta, k=k, m=m, start_epoch=start_epoch)
        self.aux_batch_size = aux_batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int, seed: int) -> None:
        """The loop's epoch (0-based): the gap term starts at ``start_epoch``."""
        self.epoch = epoch

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, ID logits) for one batch and its outliers ``x_aux``."""
        logits_in, logits_out = joint_forward(model, x, x_aux)
        targets = F.one_hot(y, logits_in.shape[1]).to(logits_in.dtype)
        return self.objective(logits_in, targets, logits_out, self.epoch), logits_in

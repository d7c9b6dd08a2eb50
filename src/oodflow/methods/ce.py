"""Cross-entropy baseline: the standard classifier every post-hoc score is applied to."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy:
    r"""Plain supervised training, :math:`L = \frac{1}{B}\sum_i -\log \mathrm{softmax}(f(x_i))_{y_i}`.

    Args:
        label_smoothing: optional label smoothing (0 = none).
    """

    uses_aux = False

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss, logits) for one batch (``x_aux`` is ignored)."""
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits

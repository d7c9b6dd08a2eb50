"""ODIN, a score that perturbs the inputs and therefore needs the network.

torch is imported only when a batch is scored, so the workflow can check ODIN's parameters without it.

Sign convention: higher = more in-distribution (ID). pytorch-ood's ``ODIN`` detector returns
the negation of this score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from oodflow.scores.base import NetworkScore

if TYPE_CHECKING:  # pragma: no cover
    import torch


class ODIN(NetworkScore):
    r"""Temperature scaling with input preprocessing (Liang, Li, Srikant, "Enhancing the
    reliability of out-of-distribution image detection in neural networks", ICLR 2018).

    With :math:`\hat y = \arg\max_k f_k(x)` the predicted class and :math:`S_k(x; T)` the
    softmax of :math:`f(x) / T`,

    .. math::
        \tilde x = x - \tfrac{\varepsilon}{\sigma}
        \operatorname{sign}\big(-\nabla_x \log S_{\hat y}(x; T)\big), \qquad s(x) = \max_k S_k(\tilde x; T)

    ``epsilon`` is in **pixel units** (intensities in [0, 1]), the paper's 0.0014: the inputs are taken
    as the model receives them, normalised :math:`x = (v - \mu) / \sigma` per channel with the
    benchmark's normalisation (:meth:`set_normalisation`, which the scoring step calls), so the step
    in the model's input space is :math:`\varepsilon / \sigma_c` in channel :math:`c`, as in the
    official code (facebookresearch/odin divides the signed gradient by the per-channel std),
    pytorch-ood's ``norm_std`` and OpenOOD. Without a normalisation the inputs are taken to be pixels
    (:math:`\sigma = 1`). (Until issue 18 the step was :math:`\varepsilon` in normalised units, about
    4x smaller than the paper's on CIFAR: our bug, not an upstream behaviour, so there is no flag for it.)
    The model is put in eval mode for the call (its previous mode is restored afterwards) and only the
    input gradient is computed, so no gradient accumulates in the model parameters.
    """

    name = "odin"

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.0014) -> None:
        temperature, epsilon = float(temperature), float(epsilon)
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"score '{self.name}': temperature must be > 0, got {temperature}")
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"score '{self.name}': epsilon must be >= 0, got {epsilon}")
        self.temperature = temperature
        self.epsilon = epsilon

    def _step(self, x: torch.Tensor) -> torch.Tensor | float:
        """The step in the model's input space: ``epsilon / std`` per channel (dim 1 of ``x``)."""
        import torch

        if self.input_std is None:
            return self.epsilon
        std = self.input_std
        if len(std) != 1 and (x.ndim < 2 or x.shape[1] != len(std)):
            raise ValueError(
                f"score '{self.name}': {len(std)} normalisation channels but inputs of shape {tuple(x.shape)}"
            )
        step = self.epsilon / torch.tensor(std, dtype=x.dtype, device=x.device)
        return step.reshape((1, -1) + (1,) * (x.ndim - 2))

    def score_inputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """ODIN scores ``(B,)`` (float64, on the inputs' device) of one batch of inputs."""
        import torch
        import torch.nn.functional as F

        if not isinstance(inputs, torch.Tensor) or inputs.ndim < 2:
            raise ValueError(f"score '{self.name}': inputs must be a batched tensor (B, ...)")
        step = self._step(inputs)
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(False), torch.enable_grad():
                x = inputs.detach().clone().requires_grad_(True)
                logits = model(x) / self.temperature
                predicted = logits.argmax(dim=1)
                # sum of -log S_yhat over the batch: each sample's input gradient is its own
                nll = F.cross_entropy(logits, predicted, reduction="sum")
                (grad,) = torch.autograd.grad(nll, x)
            perturbed = x.detach() - step * grad.sign()
            with torch.no_grad():
                out = model(perturbed).to(torch.float64) / self.temperature
                return out.softmax(dim=1).max(dim=1).values
        finally:
            model.train(was_training)

r"""Attacks on auxiliary outliers (Botschen, Kirchheim, Ortmeier, "Out-of-distribution detection with
adversarial outlier exposure", CVPRW 2025; ``logic/attacks.py`` of ``2mey10/Adversarial-OE@e8745626``).

Every attack is a callable ``attack(model, x_in, y_in, x_out, generator=None) -> x_out_adv``:

* ``x_in, y_in``: the ID batch (some attacks use it, since the OE loss is computed on the
  concatenation ``cat(x_in, x_out)`` as in the reference); ``x_out``: the outlier batch.
* All tensors are in the **model's input space** (whatever the model is fed: normalised images in
  this project). ``eps`` and ``alpha`` are in the same units; each may be a number or one value per
  channel (e.g. ``eps / std`` to express it in pixel units, see :func:`pixel_space`).
* ``generator``: a :class:`torch.Generator` for the random parts (PGD/MI-FGSM random start, the
  Gaussian noise); noise is drawn on the generator's device and moved to the input's, so a CPU
  generator gives the same noise on any device. ``None`` uses the global torch RNG.
* ``eps = 0`` returns the outliers unchanged (as the reference does, without clipping them).
* ``clip = (lo, hi)``: the valid input range (numbers or one value per channel). The reference never
  clips its outputs; here every output (and the random start) is clamped into the range when one is
  given (corrected behaviour). ``None``: no clipping.
* The result is detached. Attacks take gradients with :func:`torch.autograd.grad` with respect to
  the inputs only, so no parameter's ``.grad`` is touched, and they never change the model's mode.
  They run the model in the mode it is in: the reference attacks a **deep copy of the training
  model in train mode** (dropout active, batch norm on batch statistics, whose running averages the
  forward passes update). Pass :func:`attack_copy` of the model to get exactly that without
  touching the model itself.

Attacks (``g`` is a gradient with respect to the input; ``L_OE`` the OE loss of
:func:`oodflow.methods.outlier_exposure.oe_objective` on the concatenated batch):

=============  ==============================================================================
``none``       :math:`x' = x`
``fgsm``       :math:`x' = x + \epsilon\,\mathrm{sign}(\nabla_{x} L_{OE}(f(x_{in} \Vert x), y_{in}))`
``eba``        :math:`x' = x - \epsilon\,\mathrm{sign}(\nabla_{x} \tfrac1B\sum E(x))`,
               :math:`E = -\operatorname{lse} f` (one step that lowers the outliers' energy)
``pgd``        :math:`x_0 = x + U(-\epsilon, \epsilon)`, then ``steps`` times
               :math:`x_{t+1} = \Pi_{\epsilon}(x_t + \alpha\,\mathrm{sign}(\nabla_{x_t} L_{OE}))`
``mifgsm``     PGD with momentum: :math:`m_{t+1} = \hat g_t + \mu\,m_t`,
               :math:`\hat g = g / \mathrm{mean}|g|` per sample, step
               :math:`\alpha\,\mathrm{sign}(m_{t+1})`
``eps_gauss``  :math:`x' = x + \epsilon\,n`, :math:`n \sim N(0, I)` (no gradient: a noise control)
=============  ==============================================================================

:math:`\Pi_\epsilon` projects onto the L-infinity ball of radius :math:`\epsilon` around the clean
outliers. FGSM, PGD and MI-FGSM ascend the OE loss (they make outlier predictions less uniform);
EBA makes outliers look ID. Reference quirks, each behind a flag (default off):

* ``grad_wrt_inliers`` (PGD, MI-FGSM): take :math:`g = \nabla_{x_{in}} L_{OE}`, the gradient with
  respect to the *inliers*, and apply it to the outliers (needs equal batch shapes).
* ``oe_loss="pytorch_ood"`` (FGSM, PGD, MI-FGSM): the OE loss averaged over the concatenated batch
  (pytorch-ood ``OutlierExposureLoss``) instead of per part; this changes the balance of the ID
  and outlier terms, which matters where the two interact (batch norm in train mode).
* ``clip_start_only`` (PGD, MI-FGSM): clamp only the random start into ``clip`` (the reference
  clamps it to [0, 1]) and leave the iterates unclipped.
* ``shared_noise`` (``eps_gauss``): one noise image shared by the whole batch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from oodflow.methods.outlier_exposure import OE_LOSSES, energy, oe_objective

__all__ = ["EBA", "FGSM", "MIFGSM", "PGD", "Attack", "EpsGauss", "NoAttack", "attack_copy", "pixel_space"]

Value = float | Sequence[float] | torch.Tensor


def attack_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` to attack, in the same mode, with frozen parameters and no grads.

    Attacking the copy leaves the model's batch-norm statistics, parameters and ``.grad`` alone
    (the reference attacks ``deepcopy(model)`` of the model being trained, in train mode).
    """
    params = list(model.parameters())
    grads = [p.grad for p in params]
    try:  # do not copy the gradients along
        for p in params:
            p.grad = None
        surrogate = copy.deepcopy(model)
    finally:
        for p, g in zip(params, grads):
            p.grad = g
    surrogate.requires_grad_(False)
    return surrogate


def pixel_space(mean: Sequence[float], std: Sequence[float]) -> tuple[tuple[float, ...], tuple[tuple, tuple]]:
    """``(scale, clip)`` for inputs normalised as ``(v - mean) / std`` with pixels ``v`` in [0, 1].

    ``eps * scale`` (``scale = 1 / std`` per channel) is a step of ``eps`` in pixel units, and
    ``clip = ((0 - mean) / std, (1 - mean) / std)`` is the valid input range.
    """
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != len(std) or not mean:
        raise ValueError(f"mean and std need one value per channel, got {mean} and {std}")
    if any(not s > 0 for s in std):
        raise ValueError(f"std must be positive, got {std}")
    scale = tuple(1.0 / s for s in std)
    lo = tuple(-m / s for m, s in zip(mean, std))
    hi = tuple((1.0 - m) / s for m, s in zip(mean, std))
    return scale, (lo, hi)


def value_tensor(value: Value, name: str) -> torch.Tensor:
    """A float64 CPU tensor of a number or per-channel values, with a clear error otherwise."""
    try:
        t = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{name} must be a number or one number per channel, got {value!r} ({err})"
        ) from None
    if t.ndim > 1:
        raise ValueError(f"{name} must be a number or one number per channel, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return t


def nonnegative_tensor(value: Value, name: str) -> torch.Tensor:
    t = value_tensor(value, name)
    if bool((t < 0).any()):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return t


def broadcast_like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``t`` on ``x``'s device and dtype, shaped to broadcast over a batch ``(N, C, ...)``."""
    t = t.to(device=x.device, dtype=x.dtype)
    if t.ndim == 1:
        if x.ndim < 2 or x.shape[1] != t.numel():
            raise ValueError(f"{t.numel()} per-channel values do not fit inputs of shape {tuple(x.shape)}")
        t = t.reshape(-1, *([1] * (x.ndim - 2)))
    return t


def _noise(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator | None, normal: bool):
    """Uniform [0, 1) or standard normal noise drawn on the generator's device, moved to ``like``'s."""
    device = generator.device if generator is not None else like.device
    draw = torch.randn if normal else torch.rand
    return draw(tuple(shape), generator=generator, device=device, dtype=like.dtype).to(like.device)


def _input_grad(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(loss, x)[0]


class Attack:
    """Base class: validates ``eps`` and ``clip``; subclasses implement :meth:`perturb`."""

    name: ClassVar[str] = "attack"

    def __init__(self, eps: Value = 0.5, clip: tuple[Value, Value] | None = None) -> None:
        self.eps = nonnegative_tensor(eps, "eps")
        if clip is None:
            self.clip = None
        else:
            if len(clip) != 2:
                raise ValueError(f"clip must be (lo, hi) or None, got {clip!r}")
            lo, hi = value_tensor(clip[0], "clip lo"), value_tensor(clip[1], "clip hi")
            if not bool((lo < hi).all()):
                raise ValueError(f"clip needs lo < hi, got {clip!r}")
            self.clip = (lo, hi)

    @property
    def is_identity(self) -> bool:
        """True when the attack returns its input (``eps = 0``)."""
        return bool((self.eps == 0).all())

    def __call__(
        self,
        model: nn.Module,
        x_in: torch.Tensor,
        y_in: torch.Tensor,
        x_out: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Perturbed outliers (detached), in ``x_out``'s shape, device and dtype."""
        if self.is_identity:
            return x_out.detach()
        with torch.inference_mode(False), torch.enable_grad():
            x_in, x_out = x_in.detach().clone(), x_out.detach().clone()
            adv = self.perturb(model, x_in, y_in, x_out, generator)
        return adv.detach()

    def perturb(self, model, x_in, y_in, x_out, generator) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement perturb()")

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip is None:
            return x
        return torch.clamp(x, broadcast_like(self.clip[0], x), broadcast_like(self.clip[1], x))

    def __repr__(self) -> str:
        show = lambda v: v.tolist() if isinstance(v, torch.Tensor) else v
        params = ", ".join(
            f"{k}={tuple(map(show, v)) if isinstance(v, tuple) else show(v)!r}"
            for k, v in vars(self).items()
            if not k.startswith("_")
        )
        return f"{type(self).__name__}({params})"


class NoAttack(Attack):
    """``none``: the outliers unchanged (plain OE). ``eps`` and ``clip`` are accepted and ignored, so
    a sweep over attacks can pass the same arguments to each."""

    name = "none"

    @property
    def is_identity(self) -> bool:
        return True


class _OELossAttack(Attack):
    """Attacks that ascend the OE loss on ``cat(x_in, x_out)``."""

    def __init__(
        self,
        eps: Value = 0.5,
        clip: tuple[Value, Value] | None = None,
        lam: float = 0.5,
        oe_loss: str = "hendrycks",
    ) -> None:
        super().__init__(eps, clip)
        if oe_loss not in OE_LOSSES:
            raise ValueError(f"unknown oe_loss '{oe_loss}'; valid: {', '.join(OE_LOSSES)}")
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam, self.oe_loss = float(lam), oe_loss

    def loss(self, model: nn.Module, x_in: torch.Tensor, y_in: torch.Tensor, x_out: torch.Tensor):
        """The OE loss of one forward pass on the concatenated batch."""
        logits = model(torch.cat([x_in, x_out]))
        return oe_objective(logits[: len(x_in)], y_in, logits[len(x_in) :], self.lam, self.oe_loss)


class FGSM(_OELossAttack):
    r"""``fgsm``: one signed-gradient step up the OE loss,
    :math:`x' = x_{out} + \epsilon\,\mathrm{sign}(\nabla_{x_{out}} L_{OE}(f(x_{in} \Vert x_{out})))`.

    Args:
        eps: step size; clip: valid input range or None.
        lam: weight of the outlier term in the OE loss (pytorch-ood's default 0.5).
        oe_loss: ``"hendrycks"`` or ``"pytorch_ood"`` (concatenated-batch mean, the reference).
    """

    name = "fgsm"

    def perturb(self, model, x_in, y_in, x_out, generator):
        x = x_out.requires_grad_(True)
        g = _input_grad(self.loss(model, x_in, y_in, x), x)
        return self._clip(x_out.detach() + broadcast_like(self.eps, x_out) * g.sign())


class EBA(Attack):
    r"""``eba``, the energy-based attack of AOE: one signed-gradient step down the outliers' energy,
    :math:`x' = x_{out} - \epsilon\,\mathrm{sign}(\nabla_{x_{out}} \frac1B\sum_j E(x_j))` with
    :math:`E(x) = -\operatorname{lse}_k f_k(x)`, so the outliers look more in-distribution. The model
    sees the outlier batch alone.
    """

    name = "eba"

    def perturb(self, model, x_in, y_in, x_out, generator):
        x = x_out.requires_grad_(True)
        g = _input_grad(energy(model(x)).mean(), x)
        return self._clip(x_out.detach() - broadcast_like(self.eps, x_out) * g.sign())


class PGD(_OELossAttack):
    r"""``pgd``: projected gradient ascent on the OE loss from a random start,

    .. math::
        x_0 = x_{out} + U(-\epsilon, \epsilon), \qquad
        x_{t+1} = x_{out} + \operatorname{clamp}\big(x_t + \alpha\,\mathrm{sign}(g_t) - x_{out},
        -\epsilon, \epsilon\big), \qquad g_t = \nabla_{x_t} L_{OE}(f(x_{in} \Vert x_t))

    for ``steps`` steps; each iterate (and the start) is clamped into ``clip`` when one is given.

    Args:
        eps, clip, lam, oe_loss: as :class:`FGSM`.
        alpha: step size (the reference's 0.03); steps: number of steps (20).
        grad_wrt_inliers: QUIRK of the reference: :math:`g_t = \nabla_{x_{in}} L_{OE}`, the gradient
            with respect to the ID batch, applied to the outliers (needs equal batch shapes).
        clip_start_only: QUIRK of the reference: clamp only the random start into ``clip``.
    """

    name = "pgd"

    def __init__(
        self,
        eps: Value = 0.5,
        clip: tuple[Value, Value] | None = None,
        lam: float = 0.5,
        oe_loss: str = "hendrycks",
        alpha: Value = 0.03,
        steps: int = 20,
        grad_wrt_inliers: bool = False,
        clip_start_only: bool = False,
    ) -> None:
        super().__init__(eps, clip, lam, oe_loss)
        self.alpha = nonnegative_tensor(alpha, "alpha")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        self.steps = steps
        self.grad_wrt_inliers, self.clip_start_only = bool(grad_wrt_inliers), bool(clip_start_only)

    def gradient(self, model, x_in, y_in, x_adv) -> torch.Tensor:
        """The gradient the step follows (with respect to the outliers, or the inliers: QUIRK)."""
        if self.grad_wrt_inliers:
            x = x_in.detach().requires_grad_(True)
            return _input_grad(self.loss(model, x, y_in, x_adv), x)
        x = x_adv.detach().requires_grad_(True)
        return _input_grad(self.loss(model, x_in, y_in, x), x)

    def direction(self, g: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The vector whose sign is stepped along, and the next state (PGD: the gradient itself)."""
        return g, state

    def perturb(self, model, x_in, y_in, x_out, generator):
        if self.grad_wrt_inliers and x_in.shape != x_out.shape:
            raise ValueError(
                f"grad_wrt_inliers applies the inliers' gradient to the outliers and needs equal batch "
                f"shapes, got {tuple(x_in.shape)} and {tuple(x_out.shape)}"
            )
        eps, alpha = broadcast_like(self.eps, x_out), broadcast_like(self.alpha, x_out)
        x_adv = self._clip(x_out + (2 * _noise(x_out.shape, x_out, generator, normal=False) - 1) * eps)
        state = torch.zeros_like(x_out)
        for _ in range(self.steps):
            g, state = self.direction(self.gradient(model, x_in, y_in, x_adv), state)
            x_adv = x_adv + alpha * g.sign()
            x_adv = x_out + torch.clamp(x_adv - x_out, -eps, eps)
            if not self.clip_start_only:
                x_adv = self._clip(x_adv)
        return x_adv


class MIFGSM(PGD):
    r"""``mifgsm``: :class:`PGD` with momentum (Dong et al., CVPR 2018) as in the reference,

    .. math::
        \hat g_t = g_t / \tfrac{1}{CHW}\sum |g_t| \ \text{(per sample)}, \qquad
        m_{t+1} = \hat g_t + \mu\, m_t, \qquad x_{t+1} = \Pi_\epsilon(x_t + \alpha\,\mathrm{sign}(m_{t+1}))

    with decay :math:`\mu` (1.0). A sample with an all-zero gradient keeps :math:`\hat g = 0` (the
    reference would divide by zero). Other arguments and quirk flags as :class:`PGD`.
    """

    name = "mifgsm"

    def __init__(
        self,
        eps: Value = 0.5,
        clip: tuple[Value, Value] | None = None,
        lam: float = 0.5,
        oe_loss: str = "hendrycks",
        alpha: Value = 0.03,
        steps: int = 20,
        grad_wrt_inliers: bool = False,
        clip_start_only: bool = False,
        decay: float = 1.0,
    ) -> None:
        super().__init__(eps, clip, lam, oe_loss, alpha, steps, grad_wrt_inliers, clip_start_only)
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        self.decay = float(decay)

    def direction(self, g, state):
        dims = tuple(range(1, g.ndim))
        scale = g.abs().mean(dim=dims, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
        m = g / scale + self.decay * state
        return m, m


class EpsGauss(Attack):
    r"""``eps_gauss``, the Gaussian-noise control: :math:`x' = x_{out} + \epsilon\, n`,
    :math:`n \sim N(0, I)` drawn per sample.

    Args:
        eps, clip: as :class:`FGSM`.
        shared_noise: QUIRK of the reference: one noise image :math:`n` of shape ``(C, H, W)`` for
            the whole batch.
    """

    name = "eps_gauss"

    def __init__(
        self, eps: Value = 0.5, clip: tuple[Value, Value] | None = None, shared_noise: bool = False
    ) -> None:
        super().__init__(eps, clip)
        self.shared_noise = bool(shared_noise)

    def perturb(self, model, x_in, y_in, x_out, generator):
        shape = x_out.shape[1:] if self.shared_noise else x_out.shape
        return self._clip(
            x_out + broadcast_like(self.eps, x_out) * _noise(shape, x_out, generator, normal=True)
        )

r"""Adversarial Outlier Exposure (Botschen, Kirchheim, Ortmeier, CVPRW 2025; 2mey10/Adversarial-OE@e8745626).

Per training step the outlier batch is attacked on a copy of the model, then the model takes an OE
step on the ID batch and the attacked outliers:

.. math::
    x'_{out} = \mathcal{A}(\tilde f, x_{in}, y_{in}, x_{out}), \qquad
    L = L_{OE}\big(f(x_{in} \Vert x'_{out}), y_{in}\big)

where :math:`\tilde f` is a deep copy of the model in its current (train) mode
(:func:`oodflow.attacks.outlier.attack_copy`) and :math:`\mathcal{A}` an attack of
:mod:`oodflow.attacks` (EBA, the paper's own, lowers the outliers' energy; OE then pushes them back
to uniform predictions).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from oodflow.attacks import ATTACKS, build_attack
from oodflow.attacks.outlier import attack_copy, pixel_space
from oodflow.methods.outlier_exposure import OutlierExposure
from oodflow.seeding import derive_seed


class AdversarialOutlierExposure(OutlierExposure):
    r"""OE on adversarially perturbed outliers (``aoe``).

    Units: without ``mean``/``std``, ``eps`` and ``alpha`` are in the units of the model's input and
    nothing is clipped. With the benchmark's normalisation ``mean``/``std`` (inputs are
    ``(v - mean) / std`` for pixels ``v`` in [0, 1]), ``eps`` and ``alpha`` are in **pixel units**
    (the reference's outliers are raw pixels, so its eps means the same) and, with ``clip``, the
    attacked outliers are clamped to the valid pixel range.

    Randomness (PGD/MI-FGSM random start, Gaussian noise) comes from a generator seeded by
    ``(run seed, seed, epoch, step)``: the training loop calls :meth:`set_epoch` before each epoch,
    so a run resumed at an epoch boundary draws the same noise as an uninterrupted one.

    Args:
        attack: attack name (:data:`oodflow.attacks.ATTACKS`): ``none``, ``fgsm``, ``pgd``,
            ``mifgsm``, ``eba`` (the paper's) or ``eps_gauss``.
        eps: attack radius / step (the reference's eps_oe, 0.5 in its template).
        alpha, steps: PGD/MI-FGSM step size and count (reference 0.03, 20); decay: MI-FGSM momentum
            decay (1.0). None = the attack's default; an attack that does not take one is an error.
        lam, aux_batch_size, oe_loss: as :class:`OutlierExposure`; ``oe_loss`` is used both for
            the training step and by the attacks that ascend the OE loss.
        mean, std: the benchmark's per-channel normalisation (needed for pixel units, clipping and
            ``raw_outliers``).
        clip: clamp attacked outliers to the valid input range (needs ``mean``/``std``). The
            reference never clips.
        raw_outliers: QUIRK of the reference: feed outliers to the model as raw [0, 1] pixels
            (``x_aux * std + mean``) while ID inputs stay normalised.
        grad_wrt_inliers, clip_start_only: QUIRK flags of PGD/MI-FGSM; shared_noise: QUIRK flag of
            ``eps_gauss`` (see :mod:`oodflow.attacks.outlier`). ``grad_wrt_inliers`` needs ID and
            outlier batches of one shape, so with it the method sets ``skip_partial_batch`` and the
            training loop skips each epoch's last, partial ID batch, as the reference's loop does
            (2mey10/Adversarial-OE ``logic/training.py`` breaks on the partial batch; its aux_batch_size
            must then equal the run's batch_size).
        seed: offset of the attack generator's seed.
        augment_outliers: give the outlier batches the run's augmentation (with ``augment: true``) as
            the ID batches. Default False, as the reference (2mey10/Adversarial-OE), which never
            transforms its GAN outliers (until issue 18 they were augmented: ``true`` restores that).
    """

    uses_aux = True

    def __init__(
        self,
        attack: str = "eba",
        eps: float = 0.5,
        alpha: float | None = None,
        steps: int | None = None,
        decay: float | None = None,
        lam: float = 0.5,
        aux_batch_size: int = 128,
        oe_loss: str = "hendrycks",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        clip: bool = True,
        raw_outliers: bool = False,
        grad_wrt_inliers: bool = False,
        clip_start_only: bool = False,
        shared_noise: bool = False,
        seed: int = 0,
        augment_outliers: bool = False,
    ) -> None:
        super().__init__(lam, aux_batch_size, oe_loss)
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std (the benchmark's normalisation) or neither")
        if raw_outliers and mean is None:
            raise ValueError("raw_outliers needs the benchmark's mean and std to undo the normalisation")
        scale, bounds = (1.0, None) if mean is None else pixel_space(mean, std)
        if raw_outliers:
            scale, bounds = 1.0, (0.0, 1.0)
        scaled = lambda v: tuple(v * s for s in scale) if isinstance(scale, tuple) else v * scale
        params: dict = {"eps": scaled(eps)}
        if clip and bounds is not None:
            params["clip"] = bounds
        for key, value in (("alpha", alpha), ("steps", steps), ("decay", decay)):
            if value is not None:
                params[key] = scaled(value) if key == "alpha" else value
        for key, flag in (
            ("grad_wrt_inliers", grad_wrt_inliers),
            ("clip_start_only", clip_start_only),
            ("shared_noise", shared_noise),
        ):
            if flag:
                params[key] = True
        accepted = inspect.signature(ATTACKS.get(attack)).parameters
        params.update({k: v for k, v in (("lam", lam), ("oe_loss", oe_loss)) if k in accepted})
        self.attack_name = attack
        self.attack = build_attack(attack, **params)
        self.raw_outliers = bool(raw_outliers)
        self.skip_partial_batch = bool(grad_wrt_inliers)
        self.augment_outliers = bool(augment_outliers)
        self.mean = None if mean is None else tuple(float(m) for m in mean)
        self.std = None if std is None else tuple(float(s) for s in std)
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        """Start epoch ``epoch`` of a run with seed ``seed``: the step counter restarts at 0."""
        self._run_seed, self._epoch, self._step = int(seed), int(epoch), 0

    def next_generator(self) -> torch.Generator:
        """The CPU generator of the current step, seeded by (run seed, seed, epoch, step)."""
        key = derive_seed(self._run_seed, "aoe-attack", self.seed, self._epoch, self._step)
        self._step += 1
        return torch.Generator().manual_seed(key)

    def outliers(self, x_aux: torch.Tensor) -> torch.Tensor:
        """The outliers as the model is fed them: as given, or raw pixels with ``raw_outliers``."""
        if not self.raw_outliers:
            return x_aux
        shape = (1, len(self.std)) + (1,) * (x_aux.ndim - 2)
        std = torch.tensor(self.std, dtype=x_aux.dtype, device=x_aux.device).reshape(shape)
        mean = torch.tensor(self.mean, dtype=x_aux.dtype, device=x_aux.device).reshape(shape)
        return x_aux * std + mean

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, ID logits) for one batch: attack the outliers, then the OE step."""
        if x_aux is None:
            raise ValueError("this method needs a batch of auxiliary outliers (x_aux)")
        generator = self.next_generator()
        x_out = self.outliers(x_aux)
        if not self.attack.is_identity:
            x_out = self.attack(attack_copy(model), x, y, x_out, generator)
        return super().__call__(model, x, y, x_out)

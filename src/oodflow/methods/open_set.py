r"""The open-set recognition paper's objectives (ARPL, DIAS; docs/osr.md) as spine methods.

The OSR sub-workflow (:mod:`oodflow.osr`) trains them on its own task (known/unknown class splits,
classifier32 with two-branch batch norm). Here the same objectives train the spine's single-label
model (any :class:`~oodflow.models.base.OODNet`; the default runs fine-tune ``small_cnn`` from the
``baseline`` run on mnist5k) so that the spine's post-hoc scores and the cross-paper table see them
beside OE, energy fine-tuning, AOE and PALM/ADAPT. The losses are :mod:`oodflow.osr`'s
(:class:`~oodflow.osr.losses.ReciprocalPoints`, :func:`~oodflow.osr.losses.smooth_ce`,
:func:`~oodflow.osr.losses.feature_pull`, :func:`~oodflow.osr.losses.simulated_term` and the GAN
steps of :mod:`oodflow.osr.methods`), imported, not copied.

Both are *stateful* methods of the spine loop (:func:`oodflow.training.train`): ``setup`` builds
their modules, ``state_dict``/``load_state_dict`` carry them through checkpoints (a resumed run ends
bit for bit where an uninterrupted one does), ``train(mode)`` switches them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from oodflow.osr.losses import ReciprocalPoints, feature_pull, simulated_term, smooth_ce
from oodflow.osr.methods import fooling_term, gan_fakes, latent, update


def _copy_state(state: Any) -> Any:
    """A deep copy of a (nested) state dict: the copy does not follow later training steps."""
    return copy.deepcopy(state)


class ARPL:
    r"""Adversarial reciprocal points (Chen et al., TPAMI 2021) without confusing samples, on the
    model's penultimate features :math:`g = f(x)` (``model.features``; the linear head is unused).

    Criterion :class:`~oodflow.osr.losses.ReciprocalPoints`: one learnable point :math:`P_k` per class
    and a radius :math:`R`, logits :math:`z_k = \lVert g - P_k\rVert^2 / D - g \cdot P_k`, loss
    :math:`\mathrm{CE}(z / T, y) + w_{pl}\,\mathrm{mean}\,\max(0, \lVert g - P_y\rVert^2/D - R + 1)`.
    Points and radius are trained with the model by the loop's optimiser (:meth:`parameters`), as
    the reference trains them with the classifier's SGD.

    The run has no trained classifier head: :meth:`infer` gives the feature cache the reciprocal-point
    logits (so the cached accuracy and the logit scores MSP, MaxLogit, Energy are ARPL's) and the
    features :math:`g`; scores that read the head's weights (ReAct, ViM, ODIN, CORES) do not apply.

    Args:
        weight_pl: weight :math:`w_{pl}` of the radius (margin-ranking) term (0.1, the reference's).
        temp: temperature :math:`T` of the CE (1).
    """

    uses_aux = False

    def __init__(self, weight_pl: float = 0.1, temp: float = 1.0) -> None:
        if weight_pl < 0 or not temp > 0:
            raise ValueError(f"need weight_pl >= 0 and temp > 0, got {weight_pl}, {temp}")
        self.weight_pl, self.temp = weight_pl, temp
        self.criterion: ReciprocalPoints | None = None

    def setup(self, model: nn.Module, num_classes: int, device=None, input_shape=None) -> None:
        """Points ``0.1 N(0, 1)`` of ``model.feature_dim`` from torch's global generator (seeded by the
        loop), radius 0."""
        self.criterion = ReciprocalPoints(num_classes, model.feature_dim, self.weight_pl, self.temp)
        self.criterion.to(device or torch.device("cpu"))

    def parameters(self):
        return self.criterion.parameters()

    def train(self, mode: bool = True) -> None:
        self.criterion.train(mode)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.criterion.state_dict().items()}

    def load_state_dict(self, state) -> None:
        self.criterion.load_state_dict(state)

    def infer(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The feature cache's ``logits`` (reciprocal points) and ``features`` of inputs ``x``."""
        g = model.features(x)
        return {"logits": self.criterion.logits(g), "features": g}

    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Class logits of ``x`` (validation accuracy)."""
        return self.criterion.logits(model.features(x))

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, reciprocal-point logits) for one batch (``x_aux`` is ignored)."""
        loss, logits = self.criterion.loss(model.features(x), y)
        return loss, logits.detach()


class _ModelInputGenerator(nn.Module):
    r"""A [0, 1] image generator whose samples are normalised as the model's inputs are,
    :math:`(G(z) - \mu) / \sigma`; ``nz`` is its latent size (:func:`oodflow.osr.methods.latent`)."""

    def __init__(self, net: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        super().__init__()
        self.net, self.nz = net, net.latent_dim
        mean = torch.tensor([0.0] if mean is None else list(mean), dtype=torch.float32)
        std = torch.tensor([1.0] if std is None else list(std), dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.net(z) - self.mean) / self.std


class _Probability(nn.Module):
    """A discriminator giving probabilities of "real" (``sigmoid`` of the spine DCGAN's logits), as
    classifier32's DCGAN discriminator does, so :mod:`oodflow.osr.methods`' GAN steps apply."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def fresh_copy(model: nn.Module) -> nn.Module:
    """A model of the same architecture with new initial weights (every submodule's
    ``reset_parameters``, PyTorch's default initialisation, from torch's global generator)."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if module is not twin and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return twin


def _blocks(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(early, middle, features)`` outputs of ``model.feature_blocks()`` for inputs ``x``."""
    early, middle, late = model.feature_blocks()
    f1 = early(x)
    f2 = middle(f1)
    return f1, f2, late(f2)


class DIAS:
    r"""Difficulty-aware simulator (Moon et al., ECCV 2022; docs/osr.md) on a spine model.

    DIAS's own modules are a DCGAN (the spine's, :func:`oodflow.gan.build_generator` /
    ``build_discriminator`` for the benchmark's image format, e.g. 1x28x28 grey; its [0, 1] samples
    normalised with the benchmark's ``mean``/``std`` as the model's inputs are) and a copycat, a fresh
    copy of the model's architecture. Each has its **own optimiser kept inside the method** (the GAN:
    Adam(``gan_lr``, betas 0.5, 0.999) as the reference; the copycat: Adam(``copycat_lr``)); the loop's
    optimiser trains only the model (:meth:`parameters` is empty). All of it (weights, batch-norm
    statistics, optimiser states) is in :meth:`state_dict`, so a resumed run is bit-exact.

    One training step (the loop's one pass per epoch does both of the reference's passes per batch):

    1. GAN (moderate fakes): D step ``BCE(D(x), 1) + BCE(D(G(z)), 0)``; G step
       ``BCE(D(G(z)), 1) - beta * SCE_{smoothing2}(f(G(z)), y)``
       (:func:`~oodflow.osr.methods.discriminator_step`, :func:`~oodflow.osr.methods.fooling_term`).
    2. Copycat (model in eval mode for its targets): ``CE(cc(x), y) + pull_ratio *
       feature_pull((f1^cc, f2^cc), (f1, f2))`` on the outputs of the first two
       :meth:`~oodflow.models.base.OODNet.feature_blocks`, the model's detached.
    3. The returned classifier loss (the loop steps the model with it)::

           CE(f(x)/T, y) + beta * SCE_{smoothing2}(f(G(z')), y)
                         + fake_ratio * simulated_term(head(late(middle(f1^cc))), head(late(f2^cc)),
                                                       head(g^cc), y, smoothing, smoothing2)

       with the copycat's features computed in eval mode without gradient (hard fakes: its block
       outputs through the model's later blocks; easy fakes: its features through the model's head).

    Deviations from the OSR implementation (:class:`oodflow.osr.methods.DIAS`), all for the spine:

    * one pass per epoch with both phases per batch and **one** classifier update per batch on the
      sum of both passes' classifier losses (the reference runs two passes per epoch and updates the
      classifier in each, so it sees the CE twice as often);
    * spine models have **no second batch-norm branch** for fakes: fakes go through the same layers
      as real images (``small_cnn`` has no batch norm at all; with batch norm the fakes also move the
      running statistics);
    * the model is fine-tuned from a CE run (``init_from``) for a few epochs, not trained from
      scratch; the copycat and the GAN start fresh; the copycat uses Adam, not the classifier's SGD
      schedule, and the spine's smaller DCGAN stands in for the 32x32 reference one;
    * ``amp`` is not supported (the method's own updates run without a gradient scaler).

    Args:
        beta: weight of the moderate-fake terms (0.1).
        fake_ratio: weight of the copycat (hard/easy) term (0.1).
        pull_ratio: weight of the copycat's feature pull (1).
        smoothing, smoothing2: label smoothing of the hard (0.5) and of the easy/GAN fakes (1).
        temp: temperature of the classifier's CE (1).
        gan_lr: Adam learning rate of G and D (0.0002).
        copycat_lr: Adam learning rate of the copycat (0.001).
        latent_dim, gan_width: the DCGAN's latent size (64) and base width (16).
        mean, std: per-channel normalisation of the model inputs (the workflow fills the benchmark's
            in); ``None``: the generator's [0, 1] samples are used as they are.
        reuse_fakes: the G step scores the fakes the D step saw, as DIAS's ``train_gan`` (true);
            false: a fresh ``z`` for the G step (oodflow before issue 18).
    """

    uses_aux = False

    def __init__(
        self,
        beta: float = 0.1,
        fake_ratio: float = 0.1,
        pull_ratio: float = 1.0,
        smoothing: float = 0.5,
        smoothing2: float = 1.0,
        temp: float = 1.0,
        gan_lr: float = 0.0002,
        copycat_lr: float = 0.001,
        latent_dim: int = 64,
        gan_width: int = 16,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        reuse_fakes: bool = True,
    ) -> None:
        if min(beta, fake_ratio, pull_ratio) < 0 or not temp > 0:
            raise ValueError("need beta, fake_ratio, pull_ratio >= 0 and temp > 0")
        if not (0.0 <= smoothing <= 1.0 and 0.0 <= smoothing2 <= 1.0):
            raise ValueError(f"smoothing and smoothing2 must be in [0, 1], got {smoothing}, {smoothing2}")
        if not (gan_lr > 0 and copycat_lr > 0) or latent_dim < 1 or gan_width < 1:
            raise ValueError("need gan_lr, copycat_lr > 0 and latent_dim, gan_width >= 1")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.beta, self.fake_ratio, self.pull_ratio, self.temp = beta, fake_ratio, pull_ratio, temp
        self.smoothing, self.smoothing2 = smoothing, smoothing2
        self.gan_lr, self.copycat_lr, self.latent_dim, self.gan_width = (
            gan_lr,
            copycat_lr,
            latent_dim,
            gan_width,
        )
        self.mean, self.std, self.reuse_fakes = mean, std, bool(reuse_fakes)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.last: dict[str, float] = {}  # the last step's loss terms (diagnostics)

    # ------------------------------------------------------------------ state
    def setup(self, model: nn.Module, num_classes: int, device=None, input_shape=None) -> None:
        """Build the copycat (a fresh copy of ``model``), the DCGAN for images of ``input_shape``
        ``(C, H, W)`` and their optimisers; initial weights from torch's global generator."""
        if input_shape is None:
            raise ValueError("DIAS builds a generator of the input images: setup needs input_shape (C, H, W)")
        from oodflow.gan import build_discriminator, build_generator

        channels, height, width = (int(s) for s in input_shape)
        if height != width:
            raise ValueError(f"DIAS's DCGAN needs square images, got {height}x{width}")
        if self.mean is not None and len(self.mean) not in (1, channels):
            raise ValueError(f"mean/std have {len(self.mean)} values for {channels}-channel inputs")
        model.feature_blocks()  # a model without the (early, middle, late) contract fails here
        generator = build_generator(channels, height, self.latent_dim, self.gan_width)
        self.nets = {
            "copycat": fresh_copy(model),
            "generator": _ModelInputGenerator(generator, self.mean, self.std),
            "discriminator": _Probability(build_discriminator(channels, height, self.gan_width)),
        }
        for net in self.nets.values():
            net.to(device or torch.device("cpu"))
        gan = {"lr": self.gan_lr, "betas": (0.5, 0.999)}
        self.optimizers = {
            "copycat": torch.optim.Adam(self.nets["copycat"].parameters(), lr=self.copycat_lr),
            "generator": torch.optim.Adam(self.nets["generator"].parameters(), **gan),
            "discriminator": torch.optim.Adam(self.nets["discriminator"].parameters(), **gan),
        }

    def parameters(self):
        """Nothing for the loop's optimiser: DIAS's modules have their own."""
        return iter(())

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def state_dict(self) -> dict[str, Any]:
        return _copy_state(
            {
                "nets": {k: v.state_dict() for k, v in self.nets.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            }
        )

    def load_state_dict(self, state) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])

    # ------------------------------------------------------------------ steps
    def gan_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Phase 1: one D step and one G step (the model is not updated here)."""
        G, D = self.nets["generator"], self.nets["discriminator"]
        losses, fake = gan_fakes(G, D, self.optimizers["discriminator"], x, self.reuse_fakes)
        err_g, err_f = fooling_term(D, fake), smooth_ce(model(fake), y, self.smoothing2)
        update(self.optimizers["generator"], err_g - self.beta * err_f)
        return {**losses, "g_loss": float(err_g.detach()), "g_fake_ce": float(err_f.detach())}

    def copycat_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Phase 2: one copycat step towards the model's (eval-mode, detached) block outputs."""
        cc, training = self.nets["copycat"], model.training
        cc.train()
        model.eval()
        with torch.no_grad():
            f1, f2, _ = _blocks(model, x)
        model.train(training)
        f1c, f2c, gc = _blocks(cc, x)
        pull = feature_pull((f1c, f2c), (f1, f2))
        loss = F.cross_entropy(cc.head(gc), y) + self.pull_ratio * pull
        update(self.optimizers["copycat"], loss)
        return {"cc_loss": float(loss.detach()), "pull": float(pull.detach())}

    def simulated(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The copycat term of the classifier loss (copycat in eval mode, no gradient into it)."""
        cc = self.nets["copycat"]
        cc.eval()
        with torch.no_grad():
            f1c, f2c, gc = _blocks(cc, x)
        cc.train()
        _, middle, late = model.feature_blocks()
        hard1, hard2, easy = model.head(late(middle(f1c))), model.head(late(f2c)), model.head(gc)
        return simulated_term(hard1, hard2, easy, y, self.smoothing, self.smoothing2)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Both phases' method updates, then return (classifier loss, logits of ``x``)."""
        self.last = {**self.gan_step(model, x, y), **self.copycat_step(model, x, y)}
        klu = self.simulated(model, x, y)
        G = self.nets["generator"]
        fake = G(latent(G, len(x), x.device)).detach()
        fake_term = smooth_ce(model(fake), y, self.smoothing2)
        logits = model(x)
        loss = F.cross_entropy(logits / self.temp, y) + self.beta * fake_term + self.fake_ratio * klu
        self.last.update(fake_ce=float(fake_term.detach()), klu=float(klu.detach()))
        return loss, logits.detach()

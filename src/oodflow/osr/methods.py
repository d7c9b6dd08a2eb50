"""The OSR training methods (softmax, ARPL, ARPL+CS, DIAS): networks, optimisers and one step each.

A method owns its networks (:attr:`OSRMethod.nets`), optimisers and learning-rate schedules. The
training loop (:mod:`oodflow.osr.train`) runs, each epoch, one pass over the shuffled training set per
entry of :attr:`OSRMethod.passes` and calls :meth:`OSRMethod.step` per batch; after the epoch the
classifier's (and copycat's) ``MultiStepLR`` steps. :meth:`OSRMethod.infer` gives the logits and the
pooled embedding that evaluation and the feature cache use (ARPL: the reciprocal-point logits).

Optimisers (docs/osr.md): the classifier (with ARPL's points and radius) and DIAS's copycat use
the ``train`` block's SGD (lr 0.1, momentum 0.9, weight decay 1e-4; or Adam), ``MultiStepLR``
(milestones, gamma); the GANs use Adam(``gan_lr`` = 2e-4, betas 0.5, 0.999) without a schedule.
Latent vectors ``z ~ N(0, I)`` come from torch's global generator, which the loop seeds per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from oodflow.osr.losses import ReciprocalPoints, feature_pull, simulated_term, smooth_ce
from oodflow.osr.networks import Classifier32, Discriminator32, Generator32


def _optimizer(params, train: Mapping[str, Any]) -> torch.optim.Optimizer:
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=train["lr"], momentum=train["momentum"], weight_decay=train["weight_decay"]
        )
    if train["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=train["lr"], weight_decay=train["weight_decay"])
    raise ValueError(f"unknown optimizer '{train['optimizer']}'; valid: sgd, adam")


class OSRMethod:
    """Base class: the classifier ``net`` trained with (temperature-scaled) cross-entropy.

    Args:
        num_classes: K known classes.
        train: the config's ``osr.train`` block (optimizer, lr, momentum, weight_decay, milestones,
            gamma, width).
        temp: temperature T of the CE ``CE(z / T, y)`` (and of the MSP at evaluation).
    """

    passes: tuple[str, ...] = ("classifier",)

    def __init__(self, num_classes: int, train: Mapping[str, Any], temp: float = 1.0) -> None:
        self.num_classes, self.temp, self.train_cfg = num_classes, temp, dict(train)
        self.nets: dict[str, nn.Module] = {"net": Classifier32(num_classes, width=train["width"])}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}

    def _scheduled(self, name: str, params) -> None:
        opt = _optimizer(params, self.train_cfg)
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=list(self.train_cfg["milestones"]), gamma=self.train_cfg["gamma"]
        )

    def _gan(self, gan_lr: float) -> None:
        width = self.train_cfg["width"]
        self.nets["generator"] = Generator32(width)
        self.nets["discriminator"] = Discriminator32(width)
        for name in ("generator", "discriminator"):
            self.optimizers[name] = torch.optim.Adam(
                self.nets[name].parameters(), lr=gan_lr, betas=(0.5, 0.999)
            )

    def setup(self) -> OSRMethod:
        """Create the optimisers (after the networks are final and on their device)."""
        self._scheduled("net", self.nets["net"].parameters())
        return self

    def to(self, device: torch.device) -> OSRMethod:
        for net in self.nets.values():
            net.to(device)
        return self

    def train_mode(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval_mode(self) -> None:
        for net in self.nets.values():
            net.eval()

    def step(self, phase: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        net, opt = self.nets["net"], self.optimizers["net"]
        logits = net(x, 0)
        loss = F.cross_entropy(logits / self.temp, y)
        update(opt, loss)
        return {"loss": _f(loss), "acc": _f((logits.argmax(1) == y).float().mean())}

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, embedding)`` of real inputs (batch-norm branch 0); call in eval mode."""
        _, _, g, z = self.nets["net"].parts(x, 0)
        return z, g

    def end_epoch(self) -> None:
        for sched in self.schedulers.values():
            sched.step()

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, objs in (
            ("nets", self.nets),
            ("optimizers", self.optimizers),
            ("schedulers", self.schedulers),
        ):
            for name, obj in objs.items():
                obj.load_state_dict(state[key][name])

    def inference_state(self) -> dict[str, Any]:
        """What evaluation needs (the final ``model.pt``): the classifier and ARPL's criterion."""
        return {k: v.state_dict() for k, v in self.nets.items() if k in ("net", "criterion")}

    def load_inference_state(self, state: Mapping[str, Any]) -> None:
        for name, sd in state.items():
            self.nets[name].load_state_dict(sd)


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


def update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss`` (gradients cleared first)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class Softmax(OSRMethod):
    """The OSR baseline: ``CE(net(x) / T, y)`` on the known classes; MSP at test time."""

    def __init__(self, num_classes: int, train: Mapping[str, Any], temp: float = 1.0) -> None:
        super().__init__(num_classes, train, temp)


class ARPL(OSRMethod):
    """Adversarial reciprocal points (Chen et al. 2021) without confusing samples.

    The classifier's pooled embedding ``g`` goes into :class:`~oodflow.osr.losses.ReciprocalPoints`
    (its ``fc`` is unused); points and radius are optimised with the classifier (same SGD).
    """

    def __init__(
        self, num_classes: int, train: Mapping[str, Any], weight_pl: float = 0.1, temp: float = 1.0
    ) -> None:
        super().__init__(num_classes, train, temp)
        dim = self.nets["net"].feature_dim
        self.nets["criterion"] = ReciprocalPoints(num_classes, dim, weight_pl=weight_pl, temp=temp)

    def setup(self) -> OSRMethod:
        params = [*self.nets["net"].parameters(), *self.nets["criterion"].parameters()]
        self._scheduled("net", params)
        return self

    def classifier_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.nets["criterion"].loss(self.nets["net"].embed(x, 0), y)

    def step(self, phase: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        loss, logits = self.classifier_loss(x, y)
        update(self.optimizers["net"], loss)
        return {"loss": _f(loss), "acc": _f((logits.argmax(1) == y).float().mean())}

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.nets["net"].embed(x, 0)
        return self.nets["criterion"].logits(g), g


class ARPLConfusingSamples(ARPL):
    """ARPL+CS: ARPL plus GAN "confusing samples", two passes over the training set per epoch, as
    ARPL's ``osr.py`` (iCGY96/ARPL) runs ``train_cs`` and then the plain ``train`` every epoch:

    Pass ``confusing`` (``train_cs``), per batch:
      1. D: ``BCE(D(x), 1) + BCE(D(G(z)), 0)``;
      2. G: ``BCE(D(G(z)), 1) + beta * fake_loss(net(G(z), bn=1))`` (fakes the classifier finds
         ambiguous);
      3. classifier: ``ARPL(x, y) + beta * fake_loss(net(G(z'), bn=1))``.
    Pass ``classifier`` (``train``), per batch: the plain :class:`ARPL` step ``ARPL(x, y)``.

    Steps 1 and 2 use the same fakes ``G(z)``, as the reference (``reuse_fakes``; false: a fresh
    ``z`` for step 2, oodflow before issue 18); step 3 draws its own ``z'``, as the reference.

    So the classifier takes two updates per batch position and epoch. (Until issue 18 only the first
    pass ran, half of ARPL+CS's classifier training.)
    """

    passes = ("confusing", "classifier")

    def __init__(
        self,
        num_classes: int,
        train: Mapping[str, Any],
        weight_pl: float = 0.1,
        temp: float = 1.0,
        beta: float = 0.1,
        gan_lr: float = 0.0002,
        reuse_fakes: bool = True,
    ) -> None:
        super().__init__(num_classes, train, weight_pl=weight_pl, temp=temp)
        self.beta, self.reuse_fakes = beta, bool(reuse_fakes)
        self._gan(gan_lr)

    def fake_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return self.nets["criterion"].fake_loss(self.nets["net"].embed(fake, 1))

    def step(self, phase: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if phase == "confusing":
            return self.confusing_step(x, y)
        if phase == "classifier":
            return super().step(phase, x, y)
        raise ValueError(f"ARPL+CS has no pass '{phase}'; passes: {', '.join(self.passes)}")

    def confusing_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One batch of the ``confusing`` pass: the D, G and classifier steps of ``train_cs``."""
        G, D = self.nets["generator"], self.nets["discriminator"]
        losses, fake = gan_fakes(G, D, self.optimizers["discriminator"], x, self.reuse_fakes)
        err_g = fooling_term(D, fake)
        err_f = self.fake_loss(fake)
        update(self.optimizers["generator"], err_g + self.beta * err_f)
        loss, logits = self.classifier_loss(x, y)
        fake_cls = self.fake_loss(G(latent(G, len(x), x.device)).detach())
        total = loss + self.beta * fake_cls
        update(self.optimizers["net"], total)
        return {
            **losses,
            "g_loss": _f(err_g),
            "loss": _f(total),
            "fake_loss": _f(fake_cls),
            "acc": _f((logits.argmax(1) == y).float().mean()),
        }


def gan_fakes(
    G: nn.Module, D: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, reuse: bool
) -> tuple[dict[str, float], torch.Tensor]:
    """The D step and the fakes of the following G step: ``(D losses, fakes)``.

    ``reuse`` (the references: ARPL's ``train_cs``, DIAS's ``train_gan``): one ``G(z)`` per batch,
    which D sees detached and the G step then scores through the updated D, the same tensor (one G
    forward pass). Otherwise (oodflow before issue 18): D's fakes and a fresh ``G(z')`` for the G step.
    """
    if reuse:
        fake = G(latent(G, len(x), x.device))
        return discriminator_step(G, D, opt, x, fake), fake
    losses = discriminator_step(G, D, opt, x)
    return losses, G(latent(G, len(x), x.device))


def latent(G: nn.Module, n: int, device: torch.device) -> torch.Tensor:
    """``n`` latent vectors ``z ~ N(0, I)`` ``(n, G.nz, 1, 1)`` from torch's global generator."""
    return torch.randn(n, G.nz, 1, 1, device=device)


def fooling_term(D: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The generator's GAN loss ``BCE(D(fake), 1)`` (``D`` gives probabilities)."""
    return F.binary_cross_entropy(D(fake), torch.ones(len(fake), device=fake.device))


def discriminator_step(
    G: nn.Module, D: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, fake: torch.Tensor | None = None
) -> dict[str, float]:
    """One D step: ``BCE(D(x), 1) + BCE(D(fake.detach()), 0)`` (``D`` gives probabilities), with
    ``fake = G(z)`` drawn here when not given."""
    fake = (G(latent(G, len(x), x.device)) if fake is None else fake).detach()
    ones, zeros = torch.ones(len(x), device=x.device), torch.zeros(len(x), device=x.device)
    err = F.binary_cross_entropy(D(x), ones) + F.binary_cross_entropy(D(fake), zeros)
    update(opt, err)
    return {"d_loss": _f(err)}


class DIAS(OSRMethod):
    """Difficulty-aware simulator (Moon et al., ECCV 2022; docs/osr.md), two passes per epoch.

    Pass ``gan`` (moderate fakes), per batch:
      1. D: ``BCE(D(x), 1) + BCE(D(G(z)), 0)``;
      2. G: ``BCE(D(G(z)), 1) - beta * SmoothCE_{smoothing2}(net(G(z), bn=1), y)``;
      3. classifier: ``CE(net(x)/T, y) + beta * SmoothCE_{smoothing2}(net(G(z'), bn=1), y)``.
    Pass ``copycat`` (hard and easy fakes), per batch:
      1. copycat (train; classifier eval): ``CE(cc(x), y) + pull_ratio * (L1(f1^cc, f1) + L1(f2^cc, f2)) / 2``
         with the classifier's block-1/block-2 features detached;
      2. classifier (train; copycat eval, its outputs detached):
         ``CE(net(x)/T, y) + fake_ratio * mean(SmoothCE_{smoothing}(net.from_block2(f1^cc)),
         SmoothCE_{smoothing}(net.from_block3(f2^cc)), SmoothCE_{smoothing2}(net.fc(g^cc)))``.

    The copycat features enter the classifier's later blocks through batch-norm branch 0 (real).
    GAN steps 1 and 2 use the same fakes ``G(z)``, as DIAS's ``train_gan`` (``reuse_fakes``; false: a
    fresh ``z`` for step 2, oodflow before issue 18); step 3 draws its own ``z'``, as the reference.
    """

    passes = ("gan", "copycat")

    def __init__(
        self,
        num_classes: int,
        train: Mapping[str, Any],
        beta: float = 0.1,
        fake_ratio: float = 0.1,
        pull_ratio: float = 1.0,
        smoothing: float = 0.5,
        smoothing2: float = 1.0,
        temp: float = 1.0,
        gan_lr: float = 0.0002,
        reuse_fakes: bool = True,
    ) -> None:
        super().__init__(num_classes, train, temp)
        self.beta, self.fake_ratio, self.pull_ratio = beta, fake_ratio, pull_ratio
        self.reuse_fakes = bool(reuse_fakes)
        self.smoothing, self.smoothing2 = smoothing, smoothing2
        self.nets["copycat"] = Classifier32(num_classes, width=train["width"])
        self._gan(gan_lr)

    def setup(self) -> OSRMethod:
        self._scheduled("net", self.nets["net"].parameters())
        self._scheduled("copycat", self.nets["copycat"].parameters())
        return self

    def step(self, phase: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if phase == "gan":
            return self.gan_step(x, y)
        if phase == "copycat":
            return self.copycat_step(x, y)
        raise ValueError(f"DIAS has no pass '{phase}'; passes: {', '.join(self.passes)}")

    def generator_terms(self, fake: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(errG, errG_F)`` of fakes: fool D, and the classifier's smoothed CE on them."""
        D, net = self.nets["discriminator"], self.nets["net"]
        return fooling_term(D, fake), smooth_ce(net(fake, 1), y, self.smoothing2)

    def classifier_gan_loss(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor):
        """``(loss, logits, fake term)`` of the classifier step of the GAN pass."""
        net = self.nets["net"]
        logits = net(x, 0)
        fake_term = smooth_ce(net(fake, 1), y, self.smoothing2)
        return F.cross_entropy(logits / self.temp, y) + self.beta * fake_term, logits, fake_term

    def gan_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        G, D = self.nets["generator"], self.nets["discriminator"]
        losses, fake = gan_fakes(G, D, self.optimizers["discriminator"], x, self.reuse_fakes)
        err_g, err_f = self.generator_terms(fake, y)
        update(self.optimizers["generator"], err_g - self.beta * err_f)
        loss, logits, fake_term = self.classifier_gan_loss(x, y, G(latent(G, len(x), x.device)).detach())
        update(self.optimizers["net"], loss)
        return {
            **losses,
            "g_loss": _f(err_g),
            "g_fake_ce": _f(err_f),
            "loss": _f(loss),
            "fake_ce": _f(fake_term),
            "acc": _f((logits.argmax(1) == y).float().mean()),
        }

    def copycat_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L1, pull term)`` of the copycat step (the classifier's features detached)."""
        cc, net = self.nets["copycat"], self.nets["net"]
        f1c, f2c, _, logits = cc.parts(x, 0)
        with torch.no_grad():
            f1, f2, _, _ = net.parts(x, 0)
        pull = feature_pull((f1c, f2c), (f1, f2))
        return F.cross_entropy(logits, y) + self.pull_ratio * pull, pull

    def simulated_loss(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(L2, logits, klu)`` of the classifier step of the copycat pass."""
        cc, net = self.nets["copycat"], self.nets["net"]
        with torch.no_grad():
            f1c, f2c, gc, _ = cc.parts(x, 0)
        hard1, hard2, easy = net.from_block2(f1c, 0), net.from_block3(f2c, 0), net.fc(gc)
        klu = simulated_term(hard1, hard2, easy, y, self.smoothing, self.smoothing2)
        logits = net(x, 0)
        return F.cross_entropy(logits / self.temp, y) + self.fake_ratio * klu, logits, klu

    def copycat_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        cc, net = self.nets["copycat"], self.nets["net"]
        cc.train()
        net.eval()
        l1, pull = self.copycat_loss(x, y)
        update(self.optimizers["copycat"], l1)
        net.train()
        cc.eval()
        l2, logits, klu = self.simulated_loss(x, y)
        update(self.optimizers["net"], l2)
        cc.train()
        return {
            "cc_loss": _f(l1),
            "pull": _f(pull),
            "loss": _f(l2),
            "klu": _f(klu),
            "acc": _f((logits.argmax(1) == y).float().mean()),
        }

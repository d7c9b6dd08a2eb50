r"""Multi-prototype contrastive learning: PALM (Lu et al., ICLR 2024) and ADAPT (JINHYUKSUH/ADAPT@b25c9748).

An encoder :math:`f` and an MLP projection head :math:`g` embed both augmented views of a batch,
:math:`z_i = g(f(x_i)) / \lVert g(f(x_i)) \rVert` (N = 2B rows). Every class owns M prototypes on the
unit sphere, :math:`P \in \mathbb{R}^{K_p \times d}` with :math:`K_p = C M` and prototype ``j``
belonging to class ``j mod C``. One training step (:meth:`MultiPrototype.__call__`):

1. :func:`sinkhorn` soft-assigns samples to prototypes, :math:`Q = \mathrm{SK}(zP^\top)`;
2. :func:`update_weights` keeps the top-k entries of :math:`U = A \odot Q` per sample (``A`` the
   same-class mask) and L1-normalises them (PALM also per prototype);
3. :func:`ema_update` moves the prototypes, :math:`P \leftarrow \mathrm{normalize}(mP + (1-m)U^\top z)`,
   and measures their alignment ``a`` with the update;
4. :func:`mle_loss`: the sample-to-prototype loss with the recomputed assignment, on logits against
   the updated prototypes *detached* (ADAPT: softplus logits and hard-negative weights
   :func:`hard_negative_weights`);
5. :func:`prototype_contrastive_loss` between the updated prototypes (not detached: its gradient reaches
   the embeddings through the EMA update) at temperature 0.5 (PALM) or :func:`adaptive_temperature` of
   ``a`` (ADAPT).

:math:`L = L_{mle} + \lambda_{pcon} L_{pc}`. The prototypes are detached after every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Added to the softplus logits before the power of the hard-negative weights (the reference's).
HARD_NEGATIVE_EPS = 1e-10


def prototype_labels(num_classes: int, n_proto: int, device=None) -> torch.Tensor:
    """Class of each prototype: ``j mod C`` for ``j < C M`` (``arange(C)`` repeated M times)."""
    return torch.arange(num_classes, device=device).repeat(n_proto)


def sinkhorn(sim: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    r"""Soft assignment of N samples to K prototypes from similarities ``sim (N, K)``.

    :math:`Q_0 = \exp(\mathrm{sim}^\top / \varepsilon)` (K x N) scaled to sum 1; each iteration
    L1-normalises the rows then divides by K (each prototype's mass 1/K), then L1-normalises the
    columns and divides by N (each sample's mass 1/N). The result is :math:`N Q^\top` (N x K):
    **every sample's row sums to 1** exactly (the last normalisation), and each prototype's column
    sums to about N/K (exactly only in the limit of many iterations). Computed in float32.
    """
    q = torch.exp(sim.float().t() / epsilon)
    q = q / q.sum()
    k, n = q.shape
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / n
    return (q * n).t()


def update_weights(
    q: torch.Tensor, same_class: torch.Tensor, k: int, normalize_columns: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Top-k update weights and their indices.

    :math:`U = A \odot Q`; per row (sample) the ``k`` largest entries are kept and the row is
    L1-normalised, :math:`W_{ij} = U_{ij} 1[j \in \mathrm{top}_k(U_i)] / \sum_{l \in \mathrm{top}_k} U_{il}`.
    PALM (``normalize_columns``) then L1-normalises every column (a prototype's update is the
    weighted *mean* of its samples); ADAPT does not (a weighted *sum*). All-zero rows/columns stay 0.
    Returns ``(W (N, K), topk indices (N, k))``.
    """
    u = same_class * q
    idx = u.topk(k, dim=1).indices
    keep = torch.zeros_like(u).scatter_(1, idx, 1.0)
    w = F.normalize(keep * u, p=1, dim=1)
    if normalize_columns:
        w = F.normalize(w, p=1, dim=0)
    return w, idx


def ema_update(
    protos: torch.Tensor, z: torch.Tensor, weights: torch.Tensor, momentum: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""EMA step of the prototypes and their alignment with it.

    :math:`\Delta P = W^\top z`, :math:`P' = \mathrm{normalize}(m P + (1 - m)\Delta P)` and the
    alignment :math:`a = \frac{1}{K}\sum_j \cos(\Delta P_j, P_j)` (a prototype without samples has
    :math:`\Delta P_j = 0` and counts as cos = 0; ``a`` carries no gradient). Returns ``(P', a)``.
    """
    delta = weights.t() @ z
    with torch.no_grad():
        align = (F.normalize(delta.float(), dim=1) * F.normalize(protos.float(), dim=1)).sum(1).mean()
    return F.normalize(momentum * protos + (1.0 - momentum) * delta, dim=1), align


def adaptive_temperature(alignment: torch.Tensor | float, tau0: float = 0.4, reference: float = 0.5):
    r"""ADAPT's prototype temperature :math:`\tau_a = \tau_0 (1 + (a_{ref} - a))` (0.4 and 0.5)."""
    return tau0 * (1.0 + (reference - alignment))


def hard_negative_weights(logits: torch.Tensor, same_class: torch.Tensor, beta: float) -> torch.Tensor:
    r"""ADAPT's weights of the (softplus, so positive) logits: :math:`(L_{ij} + 10^{-10})^\beta` for
    negatives (:math:`A_{ij} = 0`), 1 for positives; detached (they scale, not steer, the gradient)."""
    w = (logits.detach() + HARD_NEGATIVE_EPS).pow(beta)
    return torch.where(same_class.bool(), torch.ones_like(w), w)


def mle_loss(
    logits: torch.Tensor,
    q: torch.Tensor,
    same_class: torch.Tensor,
    topk_idx: torch.Tensor,
    neg_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The sample-to-prototype (MLE) loss from prototype logits ``L (N, K)``.

    Weights :math:`w_{ij} = (A \odot Q)_{ij}` on the top-k indices of the update (``topk_idx``),
    row-L1-normalised; :math:`pos_i = \sum_j w_{ij} L_{ij}`,
    :math:`neg_i = \log\sum_j \exp(\tilde L_{ij})` with :math:`\tilde L = \omega \odot L` for
    ``neg_weights`` :math:`\omega` (ADAPT) or :math:`\tilde L = L` (PALM);
    :math:`L_{mle} = -\frac{1}{N}\sum_i (pos_i - neg_i)`.
    """
    keep = torch.zeros_like(q).scatter_(1, topk_idx, 1.0)
    w = F.normalize(keep * same_class * q, p=1, dim=1)
    pos = (w * logits).sum(1)
    scaled = logits if neg_weights is None else neg_weights * logits
    return -(pos - torch.logsumexp(scaled, dim=1)).mean()


def prototype_contrastive_loss(protos: torch.Tensor, labels: torch.Tensor, temperature) -> torch.Tensor:
    r"""Supervised contrastive loss among the prototypes.

    :math:`G = \hat P \hat P^\top / \tau - \max_l(\cdot)` per row; positives of ``j`` are the other
    prototypes of its class, weighted uniformly (:math:`m_{jl}`, rows sum 1);
    :math:`pos_j = \sum_l m_{jl} G_{jl}`, :math:`neg_j = \log \sum_{l \ne j} \exp G_{jl}`;
    :math:`L_{pc} = -\frac{1}{K}\sum_j (pos_j - neg_j)`.
    """
    p = F.normalize(protos, dim=1)
    g = p @ p.t() / temperature
    g = g - g.max(dim=1, keepdim=True).values.detach()
    not_self = ~torch.eye(len(p), dtype=torch.bool, device=p.device)
    pos_mask = (labels[:, None] == labels[None, :]) & not_self
    pos = (F.normalize(pos_mask.float(), p=1, dim=1) * g).sum(1)
    neg = torch.logsumexp(g.masked_fill(~not_self, float("-inf")), dim=1)
    return -(pos - neg).mean()


class MultiPrototype:
    r"""Two-view multi-prototype contrastive training (the shared machinery of ``palm``/``adapt``).

    The method owns the projection head (``Linear(D, hidden) - ReLU - Linear(hidden, proj_dim)``,
    trained with the model; :meth:`parameters`) and the prototypes (a buffer, EMA-updated);
    :meth:`state_dict` holds both and is saved in every checkpoint and in ``model.pt``. The training
    loop calls :meth:`setup` after building the model and stacks ``n_views`` augmented views
    (policy ``augmentation``, :mod:`oodflow.methods.views`) of each batch along dim 0.

    Args:
        n_proto: prototypes per class M (6).  proto_m: EMA momentum m (0.999).
        k: top-k assignments kept per sample (5).  temp: logit temperature tau (0.1).
        epsilon, sinkhorn_iter: Sinkhorn's entropy epsilon (0.05) and iterations (3).
        lambda_pcon: weight of the prototype contrastive loss (1).
        proj_dim, proj_hidden: head output (128) and hidden width (None: the feature dimension).
        n_views: augmented views per image (2).  augmentation: the views' policy name.
        mean, std: the benchmark's normalisation (the workflow fills them in), needed to jitter
            colours in pixel space.
        softplus: softplus on the prototype logits (ADAPT).  beta: hard-negative exponent (ADAPT;
            None = off).  normalize_columns: PALM's per-prototype normalisation of the update.
        proto_temp: fixed prototype temperature (PALM 0.5), or None for the adaptive one with
            ``tau0``, ``align_ref`` (ADAPT 0.4, 0.5).
    """

    uses_aux = False

    def __init__(
        self,
        n_proto: int = 6,
        proto_m: float = 0.999,
        k: int = 5,
        temp: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iter: int = 3,
        lambda_pcon: float = 1.0,
        proj_dim: int = 128,
        proj_hidden: int | None = None,
        n_views: int = 2,
        augmentation: str = "simclr",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        softplus: bool = False,
        beta: float | None = None,
        normalize_columns: bool = True,
        proto_temp: float | None = 0.5,
        tau0: float = 0.4,
        align_ref: float = 0.5,
    ) -> None:
        from oodflow.methods.views import POLICIES

        if n_proto < 1 or not 1 <= k or n_views < 1 or sinkhorn_iter < 0:
            raise ValueError(
                f"need n_proto, k, n_views >= 1 and sinkhorn_iter >= 0; got {n_proto}, {k}, {n_views}"
            )
        if not 0.0 <= proto_m <= 1.0 or temp <= 0 or epsilon <= 0 or lambda_pcon < 0:
            raise ValueError("need 0 <= proto_m <= 1, temp > 0, epsilon > 0, lambda_pcon >= 0")
        if beta is not None and not softplus:
            raise ValueError("hard-negative weighting (beta) needs positive logits: set softplus: true")
        if proto_temp is None and tau0 <= 0 or proto_temp is not None and proto_temp <= 0:
            raise ValueError("the prototype temperature must be positive")
        if augmentation not in POLICIES:
            raise ValueError(f"unknown augmentation '{augmentation}'; valid: {', '.join(POLICIES)}")
        self.n_proto, self.proto_m, self.k, self.temp = n_proto, proto_m, k, temp
        self.epsilon, self.sinkhorn_iter, self.lambda_pcon = epsilon, sinkhorn_iter, lambda_pcon
        self.proj_dim, self.proj_hidden, self.n_views, self.augmentation = (
            proj_dim,
            proj_hidden,
            n_views,
            augmentation,
        )
        self.mean, self.std = mean, std
        self.softplus, self.beta, self.normalize_columns = softplus, beta, normalize_columns
        self.proto_temp, self.tau0, self.align_ref = proto_temp, tau0, align_ref
        self.head: nn.Module | None = None
        self.prototypes: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.last_alignment = float("nan")

    # ------------------------------------------------------------------ state
    def setup(self, model: nn.Module, num_classes: int, device=None, input_shape=None) -> None:
        """Build the head for ``model.feature_dim`` and draw the prototypes (``rand``, L2-normalised:
        the reference's positive-orthant start) from torch's global generator (seeded by the loop)."""
        dim = model.feature_dim
        hidden = self.proj_hidden or dim
        self.head = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, self.proj_dim)
        )
        self.prototypes = F.normalize(torch.rand(num_classes * self.n_proto, self.proj_dim), dim=1)
        self.labels = prototype_labels(num_classes, self.n_proto)
        self.num_classes = num_classes
        self.to(device or torch.device("cpu"))

    def to(self, device) -> MultiPrototype:
        self.head.to(device)
        self.prototypes, self.labels = self.prototypes.to(device), self.labels.to(device)
        return self

    def parameters(self):
        return self.head.parameters()

    def train(self, mode: bool = True) -> None:
        self.head.train(mode)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"head.{k}": v.detach().clone() for k, v in self.head.state_dict().items()}
        state["prototypes"] = self.prototypes.detach().clone()
        return state

    def load_state_dict(self, state) -> None:
        self.head.load_state_dict({k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")})
        self.prototypes = state["prototypes"].to(self.prototypes.device).clone()

    # ------------------------------------------------------------------ forward
    def embed(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm head embeddings :math:`z = g(f(x)) / \\lVert g(f(x)) \\rVert`."""
        return F.normalize(self.head(model.features(x)).float(), dim=1)

    def class_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest-prototype classifier: per class, the largest :math:`z \\cdot P_j / \\tau` of its
        prototypes."""
        sim = z @ self.prototypes.t() / self.temp
        return sim.view(len(z), self.n_proto, self.num_classes).amax(dim=1)

    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Class logits of inputs ``x`` (validation accuracy)."""
        return self.class_logits(self.embed(model, x))

    def infer(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The feature cache's arrays of inputs ``x``: nearest-prototype ``logits``, the encoder's
        ``features`` and the unit head ``embeddings``."""
        f = model.features(x)
        z = F.normalize(self.head(f).float(), dim=1)
        return {"logits": self.class_logits(z), "features": f, "embeddings": z}

    def cache_arrays(self) -> dict[str, torch.Tensor]:
        """Arrays stored once in every feature cache: the ``prototypes`` and their classes."""
        return {"prototypes": self.prototypes, "prototype_labels": self.labels}

    def loss(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The objective for unit embeddings ``z (N, d)`` with labels ``y (N,)``; updates the prototypes."""
        protos = self.prototypes
        same = (y[:, None] == self.labels[None, :]).float()
        q = sinkhorn(z.detach() @ protos.t(), self.epsilon, self.sinkhorn_iter)
        w, idx = update_weights(q, same, self.k, self.normalize_columns)
        protos, align = ema_update(protos, z, w, self.proto_m)
        q = sinkhorn(z.detach() @ protos.detach().t(), self.epsilon, self.sinkhorn_iter)
        logits = z @ protos.detach().t() / self.temp  # as the reference: no gradient into P here
        if self.softplus:
            logits = F.softplus(logits)
        neg_w = None if self.beta is None else hard_negative_weights(logits, same, self.beta)
        l_mle = mle_loss(logits, q, same, idx, neg_w)
        tau = (
            self.proto_temp
            if self.proto_temp is not None
            else adaptive_temperature(align, self.tau0, self.align_ref)
        )
        l_pc = prototype_contrastive_loss(protos, self.labels, tau)
        self.prototypes = protos.detach()
        self.last_alignment = float(align)
        return l_mle + self.lambda_pcon * l_pc

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_aux: torch.Tensor | None = None):
        """Return (loss, class logits of the first view) for ``x`` = the ``n_views`` views stacked."""
        z = self.embed(model, x)
        loss = self.loss(z, y.repeat(self.n_views))
        return loss, self.class_logits(z[: len(y)].detach())


class PALM(MultiPrototype):
    """PALM (Lu, Wang, Li, Huang, Zhang, "Learning with mixture of prototypes for out-of-distribution
    detection", ICLR 2024): raw prototype logits, column-normalised updates, prototype temperature
    0.5. Arguments as :class:`MultiPrototype`."""

    def __init__(
        self,
        n_proto: int = 6,
        proto_m: float = 0.999,
        k: int = 5,
        temp: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iter: int = 3,
        lambda_pcon: float = 1.0,
        proj_dim: int = 128,
        proj_hidden: int | None = None,
        n_views: int = 2,
        augmentation: str = "simclr",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        proto_temp: float = 0.5,
    ) -> None:
        super().__init__(
            n_proto, proto_m, k, temp, epsilon, sinkhorn_iter, lambda_pcon, proj_dim, proj_hidden,
            n_views, augmentation, mean, std, softplus=False, beta=None, normalize_columns=True,
            proto_temp=proto_temp,
        )  # fmt: skip


class ADAPT(MultiPrototype):
    """ADAPT (JINHYUKSUH/ADAPT@b25c9748): PALM plus softplus logits, hard-negative weights
    :math:`(L + 10^{-10})^\\beta` (``beta`` 0.15), the alignment-adaptive prototype temperature
    :math:`\\tau_0 (1 + a_{ref} - a)` (``tau0`` 0.4, ``align_ref`` 0.5) and row-only normalised
    updates. Arguments as :class:`MultiPrototype`."""

    def __init__(
        self,
        n_proto: int = 6,
        proto_m: float = 0.999,
        k: int = 5,
        temp: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iter: int = 3,
        lambda_pcon: float = 1.0,
        proj_dim: int = 128,
        proj_hidden: int | None = None,
        n_views: int = 2,
        augmentation: str = "simclr",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        beta: float = 0.15,
        tau0: float = 0.4,
        align_ref: float = 0.5,
    ) -> None:
        super().__init__(
            n_proto, proto_m, k, temp, epsilon, sinkhorn_iter, lambda_pcon, proj_dim, proj_hidden,
            n_views, augmentation, mean, std, softplus=True, beta=beta, normalize_columns=False,
            proto_temp=None, tau0=tau0, align_ref=align_ref,
        )  # fmt: skip

"""Scores that combine the features with the last linear layer (the :class:`Head`): ReAct, ViM.

Sign convention: higher = more in-distribution (ID). pytorch-ood's ``ReAct`` (with its
default energy detector) and ``ViM`` return the negations of these scores.
Both need ``fit(train, head)`` with the ID training cache; all arithmetic is float64.
"""

from __future__ import annotations

import numpy as np

from oodflow.scores.base import Cache, Head, Score, check_features, check_fitted
from oodflow.scores.logit_based import logsumexp


def _require_head(name: str, train: Cache, head: Head | None) -> Head:
    if head is None:
        raise ValueError(f"score '{name}' needs the network head: call fit(train, head)")
    if head.weight.shape[1] != train.features.shape[1]:
        raise ValueError(
            f"score '{name}': head weight {head.weight.shape} does not fit "
            f"{train.features.shape[1]}-d features"
        )
    return head


class ReAct(Score):
    r"""Rectified activations (Sun, Guo, Li, "ReAct: Out-of-distribution detection with rectified
    activations", NeurIPS 2021).

    ``fit`` sets the clipping threshold :math:`c` to the ``percentile``-th percentile (in
    percent, numpy's linear interpolation) of *all entries* of the ID training features. The
    features are clipped from above, passed through the head and scored with the energy:

    .. math:: s(x) = \log \sum_k \exp\big(W_k \min(f(x), c) + b_k\big)
    """

    name = "react"
    requires_fit = True

    def __init__(self, percentile: float = 90.0) -> None:
        percentile = float(percentile)
        if not 0.0 < percentile <= 100.0:
            raise ValueError(
                f"score '{self.name}': percentile must be in (0, 100] (percent), got {percentile}"
            )
        self.percentile = percentile
        self._threshold: float | None = None
        self._head: Head | None = None

    def fit(self, train: Cache, head: Head | None = None) -> ReAct:
        self._head = _require_head(self.name, train, head)
        flat = np.asarray(train.features, dtype=np.float64).ravel()
        self._threshold = float(np.percentile(flat, self.percentile))
        return self

    @property
    def threshold(self) -> float | None:
        """The clipping threshold :math:`c` found by :meth:`fit`."""
        return self._threshold

    def score(self, cache: Cache) -> np.ndarray:
        check_fitted(self, "_threshold", "_head")
        check_features(self, cache, self._head.weight.shape[1])
        clipped = np.minimum(np.asarray(cache.features, dtype=np.float64), self._threshold)
        return logsumexp(self._head.logits(clipped))


class ViM(Score):
    r"""Virtual-logit matching (Wang, Li, Feng, Zhang, "ViM: Out-of-distribution with
    virtual-logit matching", CVPR 2022).

    ``fit`` moves the origin to :math:`u = -W^{+} b` and takes the eigenvectors of the
    uncentred second-moment matrix :math:`\frac{1}{N} \sum_i (f_i - u)(f_i - u)^\top` of the ID
    training features (the paper's ``EmpiricalCovariance(assume_centered=True)``). The ``dim``
    leading ones span the principal space; :math:`R` holds the remaining ``D - dim``. With the
    residual norm :math:`r(x) = \lVert R^\top (f(x) - u) \rVert_2` and

    .. math:: \alpha = \frac{\operatorname{mean}_{\text{train}} \max_k z_k}
        {\operatorname{mean}_{\text{train}} r}, \qquad
        s(x) = \log \sum_k e^{z_k(x)} - \alpha\, r(x)

    where :math:`z` are the cached logits. ``dim`` must be smaller than the feature dimension.
    """

    name = "vim"
    requires_fit = True

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"score '{self.name}': dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self._origin: np.ndarray | None = None  # (D,)
        self._residual_basis: np.ndarray | None = None  # (D, D - dim)
        self._alpha: float | None = None

    @property
    def alpha(self) -> float | None:
        """The virtual-logit scale found by :meth:`fit`."""
        return self._alpha

    def fit(self, train: Cache, head: Head | None = None) -> ViM:
        head = _require_head(self.name, train, head)
        n_features = train.features.shape[1]
        if self.dim >= n_features:
            raise ValueError(
                f"score '{self.name}': dim={self.dim} must be smaller than the feature dimension {n_features}"
            )
        weight = np.asarray(head.weight, dtype=np.float64)
        origin = -np.linalg.pinv(weight) @ np.asarray(head.bias, dtype=np.float64)
        x = np.asarray(train.features, dtype=np.float64) - origin
        _, eigvec = np.linalg.eigh(x.T @ x / x.shape[0])  # ascending eigenvalues
        residual_basis = eigvec[:, : n_features - self.dim]
        residual = np.linalg.norm(x @ residual_basis, axis=1)
        max_logit = np.asarray(train.logits, dtype=np.float64).max(axis=1).mean()
        if residual.mean() <= 0:
            raise ValueError(f"score '{self.name}': the training residuals are all zero")
        self._origin, self._residual_basis = origin, residual_basis
        self._alpha = float(max_logit / residual.mean())
        return self

    def score(self, cache: Cache) -> np.ndarray:
        check_fitted(self, "_origin", "_residual_basis", "_alpha")
        check_features(self, cache, self._origin.shape[0])
        x = np.asarray(cache.features, dtype=np.float64) - self._origin
        residual = np.linalg.norm(x @ self._residual_basis, axis=1)
        return logsumexp(cache.logits) - self._alpha * residual

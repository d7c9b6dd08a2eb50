"""Post-hoc multi-label OOD scores on a feature cache; every score is "higher = more ID" (float64).

Logit scores (``z``: the ``(N, C)`` label logits):

* ``joint_energy``: :math:`S(x) = \\sum_j \\operatorname{softplus}(z_j) = \\sum_j \\log(1 + e^{z_j})`
  (Wang et al., NeurIPS 2021; EDGE's score), computed as ``np.logaddexp(0, z)``: finite for any
  finite logit (the reference's ``log(1 + exp(z))`` overflows to ``inf`` above ~88 in float32);
* ``max_energy``: :math:`\\max_j \\operatorname{softplus}(z_j)` (EDGE's ``--method max``);
* ``maxlogit``: :math:`\\max_j z_j`;
* ``max_sigmoid``: :math:`\\max_j \\sigma(z_j)`, computed as ``exp(-softplus(-max z))``.

Feature scores reuse the spine's single-label scores with every training image in one class:
``knn`` (Sun et al. 2022: negated distance to the k-th nearest normalised ID training feature) and
``mahalanobis`` (negated squared Mahalanobis distance to the mean of all ID training features, one
Gaussian: class means are not defined for multi-hot targets).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from oodflow.scores.base import Cache
from oodflow.scores.distance_based import KNN, Mahalanobis


def softplus(z: np.ndarray) -> np.ndarray:
    """:math:`\\log(1 + e^z)` in float64, finite for every finite ``z``."""
    return np.logaddexp(0.0, np.asarray(z, dtype=np.float64))


def joint_energy(logits: np.ndarray) -> np.ndarray:
    """JointEnergy :math:`\\sum_j \\operatorname{softplus}(z_j)` per row (higher = more ID)."""
    return softplus(logits).sum(axis=1)


class MLScore:
    """A multi-label score: optional :meth:`fit` on the ID training cache, :meth:`score` per cache."""

    name: ClassVar[str] = "score"

    def fit(self, train: Cache) -> MLScore:
        return self

    def score(self, cache: Cache) -> np.ndarray:
        raise NotImplementedError


class JointEnergy(MLScore):
    name = "joint_energy"

    def score(self, cache: Cache) -> np.ndarray:
        return joint_energy(cache.logits)


class MaxEnergy(MLScore):
    name = "max_energy"

    def score(self, cache: Cache) -> np.ndarray:
        return softplus(cache.logits).max(axis=1)


class MaxLogitML(MLScore):
    name = "maxlogit"

    def score(self, cache: Cache) -> np.ndarray:
        return np.asarray(cache.logits, dtype=np.float64).max(axis=1)


class MaxSigmoid(MLScore):
    name = "max_sigmoid"

    def score(self, cache: Cache) -> np.ndarray:
        top = np.asarray(cache.logits, dtype=np.float64).max(axis=1)
        return np.exp(-softplus(-top))


def _one_class(cache: Cache) -> Cache:
    return Cache(cache.logits, cache.features, np.zeros(len(cache), dtype=np.int64))


class KNNML(MLScore):
    name = "knn"

    def __init__(self, k: int = 50) -> None:
        self._knn = KNN(k)
        self.k = self._knn.k

    def fit(self, train: Cache) -> KNNML:
        self._knn.fit(_one_class(train))
        return self

    def score(self, cache: Cache) -> np.ndarray:
        return self._knn.score(cache)


class MahalanobisML(MLScore):
    name = "mahalanobis"

    def __init__(self) -> None:
        self._maha = Mahalanobis()

    def fit(self, train: Cache) -> MahalanobisML:
        self._maha.fit(_one_class(train))
        return self

    def score(self, cache: Cache) -> np.ndarray:
        return self._maha.score(cache)


def build_ml_score(name: str, **params: Any) -> MLScore:
    """The multi-label score ``name`` with ``params`` (unknown names list the valid ones)."""
    from oodflow.multilabel import ML_SCORES

    cls = ML_SCORES.get(name)
    try:
        return cls(**params)
    except TypeError as err:
        raise TypeError(f"multi-label score '{name}': {err}") from None


def cache_of(logits: np.ndarray, features: np.ndarray) -> Cache:
    """A spine :class:`Cache` of multi-label outputs (labels unused by these scores: zeros)."""
    return Cache(logits, features, np.zeros(len(logits), dtype=np.int64))

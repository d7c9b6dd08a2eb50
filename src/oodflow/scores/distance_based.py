"""Scores from distances in feature space to the ID training data: Mahalanobis, SSD and KNN.

Sign convention: higher = more in-distribution (ID), so each score is a *negated* distance.
pytorch-ood's ``Mahalanobis`` and ``KNN`` return (scaled) distances, i.e. outlier scores.
Both scores are fitted on the penultimate features of the ID training cache; all arithmetic is
float64.
"""

from __future__ import annotations

import numpy as np

from oodflow.scores.base import Cache, Head, Score, check_features, check_fitted


class Mahalanobis(Score):
    r"""Class-conditional Gaussians with a tied covariance (Lee et al., "A simple unified
    framework for detecting out-of-distribution samples and adversarial attacks", NeurIPS 2018).

    ``fit`` estimates the class means :math:`\mu_c` and the shared within-class covariance

    .. math:: \Sigma = \frac{1}{N} \sum_c \sum_{i: y_i = c} (f_i - \mu_c)(f_i - \mu_c)^\top

    from the ID training features. The score is the negated squared distance to the closest
    class mean

    .. math:: s(x) = -\min_c (f(x) - \mu_c)^\top \Sigma^{+} (f(x) - \mu_c)

    where :math:`\Sigma^{+}` is the pseudo-inverse (eigenvalues below ``D * eps * max`` are
    dropped), so a singular covariance is handled. Without the factor 1/2 of some code bases;
    no input preprocessing and a single layer (the paper's ensemble over layers is not used).

    Args:
        normalize: L2-normalise the features first (PALM/ADAPT score normalised encoder features).
    """

    name = "mahalanobis"
    requires_fit = True

    def __init__(self, normalize: bool = False) -> None:
        if not isinstance(normalize, bool):
            raise ValueError(f"score '{self.name}': normalize must be true or false, got {normalize!r}")
        self.normalize = normalize
        self._means: np.ndarray | None = None  # (C, D)
        self._whiten: np.ndarray | None = None  # (D, r): Sigma^+ = W W^T

    def _features(self, cache: Cache) -> np.ndarray:
        f = np.asarray(cache.features, dtype=np.float64)
        return _unit_rows(f) if self.normalize else f

    def _covariance(self, f: np.ndarray, means: np.ndarray, y: np.ndarray) -> np.ndarray:
        centred = f - means[y]
        return centred.T @ centred / f.shape[0]

    def fit(self, train: Cache, head: Head | None = None) -> Mahalanobis:
        f = self._features(train)
        classes, y = np.unique(train.labels, return_inverse=True)
        if classes.size == 0 or classes[0] < 0:
            raise ValueError(f"score '{self.name}': train labels must be class indices >= 0")
        counts = np.bincount(y, minlength=classes.size).astype(np.float64)
        means = np.zeros((classes.size, f.shape[1]))
        np.add.at(means, y, f)
        means /= counts[:, None]
        cov = self._covariance(f, means, y)
        eigval, eigvec = np.linalg.eigh(cov)
        keep = eigval > f.shape[1] * np.finfo(np.float64).eps * max(eigval.max(), 0.0)
        if not keep.any():
            raise ValueError(f"score '{self.name}': the covariance is zero")
        self._means = means
        self._whiten = eigvec[:, keep] / np.sqrt(eigval[keep])
        return self

    def score(self, cache: Cache) -> np.ndarray:
        check_fitted(self, "_means", "_whiten")
        check_features(self, cache, self._whiten.shape[0])
        g = self._features(cache) @ self._whiten  # (N, r)
        m = self._means @ self._whiten  # (C, r)
        sq = (g * g).sum(1)[:, None] - 2.0 * g @ m.T + (m * m).sum(1)[None, :]
        return -self.scale * np.maximum(sq.min(axis=1), 0.0)

    scale = 1.0  # the factor of the squared distance in the score


class MahalanobisPooled(Mahalanobis):
    r"""The Mahalanobis score of PALM/ADAPT's evaluation (``eval_ood.py`` of JINHYUKSUH/ADAPT@b25c9748).

    Class means :math:`\mu_c` as in :class:`Mahalanobis`, but the covariance is that of all training
    features pooled around their global mean, not class-centred (``torch.cov``, unbiased):

    .. math:: \Sigma = \frac{1}{N - 1} \sum_i (f_i - \bar f)(f_i - \bar f)^\top, \qquad
              s(x) = -\min_c \tfrac{1}{2} (f(x) - \mu_c)^\top \Sigma^{+} (f(x) - \mu_c)

    with the pseudo-inverse :math:`\Sigma^+` and, by default, L2-normalised features (``normalize``).
    """

    name = "mahalanobis_pooled"
    scale = 0.5

    def __init__(self, normalize: bool = True) -> None:
        super().__init__(normalize)

    def _covariance(self, f: np.ndarray, means: np.ndarray, y: np.ndarray) -> np.ndarray:
        if f.shape[0] < 2:
            raise ValueError(f"score '{self.name}': the covariance needs at least 2 training samples")
        centred = f - f.mean(0)
        return centred.T @ centred / (f.shape[0] - 1)


class SSD(Score):
    r"""PALM's evaluator score: one class-agnostic Gaussian (SSD+-style) on L2-normalised, standardised
    features (Sehwag et al., "SSD: A unified framework for self-supervised outlier detection", ICLR
    2021; as PALM's ``util/evaluations/mahalanobis.py``, jeff024/PALM@eecb59ac).

    With unit features :math:`u = f / (\lVert f \rVert_2 + 10^{-10})`, the per-dimension mean
    :math:`m` and population standard deviation :math:`s` of the ID training :math:`u`, and the
    standardised features :math:`v = (u - m) / (s + 10^{-10})`,

    .. math:: \Sigma = \frac{1}{N} \sum_i (v_i - \bar v)(v_i - \bar v)^\top, \qquad
              s(x) = -(v(x) - c)^\top \Sigma^{+} (v(x) - c)

    (no class labels, no factor 1/2, the pseudo-inverse :math:`\Sigma^+`; higher = more ID). The centre
    ``c`` is, with ``center="standardised"`` (the default, SSD+'s), the mean :math:`\bar v` of the
    standardised training features (zero up to rounding). PALM's evaluator subtracts the mean
    :math:`m` of the *unstandardised* unit features from the already standardised ones:
    ``center="palm"`` reproduces that (``c = m``). PALM reports FPR@95 as ``mean(ood > percentile(id,
    5))`` (:func:`oodflow.metrics.fpr_at_95_tpr_percentile`).
    """

    name = "ssd"
    requires_fit = True
    CENTERS = ("standardised", "palm")

    def __init__(self, center: str = "standardised") -> None:
        if center not in self.CENTERS:
            raise ValueError(
                f"score '{self.name}': unknown center {center!r}; valid: {', '.join(self.CENTERS)}"
            )
        self.center = center
        self._mean: np.ndarray | None = None  # m
        self._std: np.ndarray | None = None  # s
        self._centre: np.ndarray | None = None  # c
        self._whiten: np.ndarray | None = None  # Sigma^+ = W W^T

    @staticmethod
    def _unit(cache: Cache) -> np.ndarray:
        f = np.asarray(cache.features, dtype=np.float64)
        return f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-10)

    def fit(self, train: Cache, head: Head | None = None) -> SSD:
        u = self._unit(train)
        if u.shape[0] < 2:
            raise ValueError(f"score '{self.name}': the covariance needs at least 2 training samples")
        self._mean, self._std = u.mean(0), u.std(0)
        v = (u - self._mean) / (self._std + 1e-10)
        centred = v - v.mean(0)
        cov = centred.T @ centred / v.shape[0]
        eigval, eigvec = np.linalg.eigh(cov)
        keep = eigval > v.shape[1] * np.finfo(np.float64).eps * max(eigval.max(), 0.0)
        if not keep.any():
            raise ValueError(f"score '{self.name}': the covariance is zero")
        self._whiten = eigvec[:, keep] / np.sqrt(eigval[keep])
        self._centre = v.mean(0) if self.center == "standardised" else self._mean.copy()
        return self

    def score(self, cache: Cache) -> np.ndarray:
        check_fitted(self, "_mean", "_whiten")
        check_features(self, cache, self._whiten.shape[0])
        v = (self._unit(cache) - self._mean) / (self._std + 1e-10)
        g = (v - self._centre) @ self._whiten
        return -(g * g).sum(1)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class KNN(Score):
    r"""Deep nearest neighbours (Sun, Ming, Zhu, Li, "Out-of-distribution detection with deep
    nearest neighbors", ICML 2022).

    With L2-normalised features :math:`z = f / \lVert f \rVert_2` and :math:`z_{(k)}` the
    ``k``-th nearest normalised ID training feature,

    .. math:: s(x) = -\lVert z(x) - z_{(k)}(x) \rVert_2

    Exact search (no approximate index, :mod:`oodflow.neighbours`): queries are processed in blocks
    whose distance matrix holds at most ``2**24`` entries, so memory stays bounded for any test set
    size. ``backend`` ``numpy`` (float64, the default) or ``torch`` (float32, on a GPU when present;
    the fast path at paper scale, e.g. PALM/ADAPT's k = 300 over 50k training features).
    """

    name = "knn"
    requires_fit = True

    def __init__(self, k: int = 50, backend: str = "numpy") -> None:
        from oodflow.neighbours import BACKENDS

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"score '{self.name}': k must be a positive integer, got {k!r}")
        if backend not in BACKENDS:
            raise ValueError(
                f"score '{self.name}': unknown backend '{backend}'; valid: {', '.join(BACKENDS)}"
            )
        self.k, self.backend = int(k), backend
        self._bank: np.ndarray | None = None  # (M, D) normalised train features

    def fit(self, train: Cache, head: Head | None = None) -> KNN:
        if len(train) < self.k:
            raise ValueError(f"score '{self.name}': k={self.k} exceeds the {len(train)} training samples")
        self._bank = _unit_rows(train.features)
        return self

    def score(self, cache: Cache) -> np.ndarray:
        from oodflow.neighbours import kth_sqdist

        check_fitted(self, "_bank")
        check_features(self, cache, self._bank.shape[1])
        return -np.sqrt(kth_sqdist(_unit_rows(cache.features), self._bank, self.k, self.backend))

"""Scores computed from the logits alone: MSP, MaxLogit, Energy and JointEnergy.

Sign convention: higher = more in-distribution (ID). pytorch-ood's ``MaxSoftmax``,
``MaxLogit`` and ``EnergyBased`` detectors return the negations of these scores.
All computations are in float64 and numerically stable for large logits.
"""

from __future__ import annotations

import numpy as np

from oodflow.scores.base import Cache, Score


def logsumexp(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """Stable ``log(sum(exp(z)))`` along ``axis`` in float64."""
    z = np.asarray(z, dtype=np.float64)
    top = z.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.exp(z - top).sum(axis=axis))


def _positive(name: str, param: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"score '{name}': {param} must be a positive number, got {value}")
    return value


class MSP(Score):
    r"""Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017).

    .. math:: s(x) = \max_k \frac{e^{z_k}}{\sum_j e^{z_j}}
        = \Big(\sum_j e^{z_j - \max_k z_k}\Big)^{-1}

    The right-hand form is used, so the score never overflows. It lies in ``[1/K, 1]``.
    """

    name = "msp"

    def score(self, cache: Cache) -> np.ndarray:
        z = np.asarray(cache.logits, dtype=np.float64)
        return 1.0 / np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)


class MaxLogit(Score):
    r"""Maximum logit (Hendrycks et al., "Scaling out-of-distribution detection for real-world
    settings", ICML 2022).

    .. math:: s(x) = \max_k z_k
    """

    name = "maxlogit"

    def score(self, cache: Cache) -> np.ndarray:
        return np.asarray(cache.logits, dtype=np.float64).max(axis=1)


class Energy(Score):
    r"""Negative free energy (Liu et al., "Energy-based out-of-distribution detection",
    NeurIPS 2020).

    .. math:: s(x) = -E(x; T) = T \log \sum_k e^{z_k / T}

    with temperature ``T > 0`` (default 1). The paper's energy ``E(x)`` (lower = ID) is ``-s``.
    """

    name = "energy"

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = _positive(self.name, "temperature", temperature)

    def score(self, cache: Cache) -> np.ndarray:
        t = self.temperature
        return t * logsumexp(np.asarray(cache.logits, dtype=np.float64) / t)


class JointEnergy(Score):
    r"""JointEnergy (Wang et al., "Can multi-label classification networks know what they don't
    know?", NeurIPS 2021), EDGE's score, on single-label logits:

    .. math:: s(x) = \sum_k \operatorname{softplus}(z_k) = \sum_k \log(1 + e^{z_k})

    computed as ``np.logaddexp(0, z)``, finite for every finite logit (``log(1 + exp(z))`` overflows
    above ~709 in float64). Each label contributes its own evidence, not one softmax over labels;
    the multi-label section's ``joint_energy`` (:mod:`oodflow.multilabel.scores`) is the same sum.
    """

    name = "joint_energy"

    def score(self, cache: Cache) -> np.ndarray:
        return np.logaddexp(0.0, np.asarray(cache.logits, dtype=np.float64)).sum(axis=1)

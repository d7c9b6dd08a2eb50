"""Data containers and base classes of the post-hoc scores.

Sign convention: :meth:`Score.score` returns "higher = more in-distribution (ID)" as float64,
one value per sample. Detectors of other libraries that return outlier scores (higher = OOD, as
in pytorch-ood) equal the negation of ours.

Most scores work on a :class:`Cache` of network outputs (logits, penultimate features, labels)
computed once per model and dataset; some also need the last linear layer, a :class:`Head`.
Scores that must run the network themselves (input perturbation, as ODIN) derive from
:class:`NetworkScore`. This module does not import torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from oodflow.io import FormatError, load_npz

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _float_array(value: object, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a real floating array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values")
    return arr


@dataclass
class Cache:
    """Network outputs for one dataset: ``logits (N, K)``, ``features (N, D)``, ``labels (N,)``.

    Arrays keep their floating dtype (float32 caches stay float32; scores compute in float64).
    Labels are integer class indices; for OOD data their value is not used by any score.
    """

    logits: np.ndarray
    features: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.logits = _float_array(self.logits, "logits", 2)
        self.features = _float_array(self.features, "features", 2)
        labels = np.asarray(self.labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        self.labels = labels
        n = {len(self.logits), len(self.features), len(self.labels)}
        if len(n) != 1:
            raise ValueError(
                f"logits, features and labels disagree in length: {len(self.logits)}, "
                f"{len(self.features)}, {len(self.labels)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> Cache:
        """Load a cache written with ``oodflow.io.save_npz(path, logits=..., features=...,
        labels=...)``; a malformed file is a :class:`~oodflow.io.FormatError` naming it."""
        arrays = load_npz(path, required={"logits": 2, "features": 2, "labels": 1})
        try:
            return cls(arrays["logits"], arrays["features"], arrays["labels"])
        except ValueError as err:
            raise FormatError(f"{path}: {err}") from None


@dataclass
class Head:
    """The last linear layer ``logits = features @ weight.T + bias``: ``weight (K, D)``,
    ``bias (K,)``."""

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        self.weight = _float_array(self.weight, "weight", 2)
        self.bias = _float_array(self.bias, "bias", 1)
        if self.bias.shape[0] != self.weight.shape[0]:
            raise ValueError(
                f"bias has {self.bias.shape[0]} entries but weight has {self.weight.shape[0]} rows"
            )

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> Head:
        """Load the head stored beside a feature cache (arrays ``head_weight``, ``head_bias``)."""
        arrays = load_npz(path, required={"head_weight": 2, "head_bias": 1})
        try:
            return cls(arrays["head_weight"], arrays["head_bias"])
        except ValueError as err:
            raise FormatError(f"{path}: {err}") from None

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Logits of ``features (N, D)`` in float64."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"features of shape {features.shape} do not fit a head of weight shape {self.weight.shape}"
            )
        return features @ self.weight.astype(np.float64).T + self.bias.astype(np.float64)


class Score:
    """Base class: a post-hoc score on a :class:`Cache`, higher = more ID.

    Subclasses that need statistics of the ID training data set ``requires_fit = True`` and
    compute them in :meth:`fit`; calling :meth:`score` before is a :class:`RuntimeError`.
    """

    name: ClassVar[str] = "score"
    needs_network: ClassVar[bool] = False
    requires_fit: ClassVar[bool] = False

    def fit(self, train: Cache, head: Head | None = None) -> Score:
        """Fit on the ID training cache (and the head, where used); the default does nothing."""
        return self

    def score(self, cache: Cache) -> np.ndarray:
        """One float64 score per sample of ``cache``; higher = more ID."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score()")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class NetworkScore(Score):
    """Base class of scores that need the network itself, one input batch at a time."""

    needs_network: ClassVar[bool] = True
    #: the per-channel std of the inputs' normalisation ``(v - mean) / std`` (pixels ``v`` in [0, 1]),
    #: set by :meth:`set_normalisation`; None: the inputs are pixels
    input_std: tuple[float, ...] | None = None

    def set_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> NetworkScore:
        """Tell the score how its inputs were normalised, ``(v - mean) / std`` per channel (the benchmark's
        normalisation: the scoring step calls this before scoring); returns the score."""
        std = tuple(float(s) for s in std)
        if len(std) != len(tuple(mean)) or not std or not all(np.isfinite(s) and s > 0 for s in std):
            raise ValueError(
                f"score '{self.name}': normalisation needs one finite std > 0 per mean, got {std}"
            )
        self.input_std = std
        return self

    def score_inputs(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` of one batch of model inputs; ``model`` maps inputs to logits."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score_inputs()")

    def score(self, cache: Cache) -> np.ndarray:
        raise TypeError(f"score '{self.name}' needs the network; call score_inputs(model, inputs) per batch")


def check_fitted(score: Score, *attrs: str) -> None:
    """Raise a RuntimeError unless :meth:`Score.fit` has set every attribute in ``attrs``."""
    if any(getattr(score, a, None) is None for a in attrs):
        raise RuntimeError(f"score '{score.name}' must be fitted first: call fit(train, head)")


def check_features(score: Score, cache: Cache, dim: int) -> None:
    """Raise a ValueError unless ``cache`` has features of the dimension seen in ``fit``."""
    if cache.features.shape[1] != dim:
        raise ValueError(
            f"score '{score.name}' was fitted on {dim}-d features, got {cache.features.shape[1]}-d"
        )

"""OSR evaluation (docs/osr.md): closed-set accuracy, AUROC, OSCR, open-set macro-F1, post-hoc scores.

Scores follow the project's convention, "higher = known". Two protocol scores of the method's logits
(ARPL: its reciprocal-point logits), each with accuracy, AUROC, OSCR and the spine's OOD metrics:
``msp`` = ``max softmax(z / T)`` (DIAS's protocol, and its softmax baseline's) and ``maxlogit`` =
``max_k z_k`` (ARPL's ``test``: the max of the raw reciprocal-point logits). Which one is a method's
own is :data:`oodflow.osr.PROTOCOL_SCORES`. The open-set F1 is defined by an MSP threshold and is
computed under ``msp`` only.

* **accuracy**: argmax on the known test set.
* **AUROC**: known positive (:func:`oodflow.metrics.auroc`, sklearn's ``roc_auc_score``).
* **OSCR**: ARPL's ``compute_oscr`` exactly, see :func:`oscr` (its finite-sample offset included).
* **F1**: macro-F1 over the K known classes plus "unknown" (label -1): a sample is predicted
  ``argmax`` if ``MSP > thr - 0.05``, else unknown, with ``thr = smoothing/K + (1 - smoothing)``
  (DIAS's rule; smoothing 0.5 gives the cut-offs 0.5333, 0.575, 0.475 for K = 6, 4, 20).
* **post-hoc scores** of the spine (MaxLogit, Energy, KNN, Mahalanobis) on the feature cache of one
  forward pass (logits and pooled embedding of the known train, known test and unknown images), with
  the spine's four OOD metrics (unknown = OOD).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from oodflow.metrics import accuracy, ood_metrics
from oodflow.scores import Cache, build_score


def msp(logits: np.ndarray, temp: float = 1.0) -> np.ndarray:
    """``max_k softmax(z / T)_k`` in float64."""
    z = np.asarray(logits, dtype=np.float64) / temp
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).max(1)


def oscr_curve(
    known_scores: np.ndarray, known_correct: np.ndarray, unknown_scores: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """OSCR as ARPL's ``compute_oscr``: ``(area, FPR, CCR)`` with the curve sorted by FPR descending.

    All ``n`` scores are sorted ascending (stably: known before unknown on ties, in input order; the
    reference's ``argsort`` leaves ties in an unspecified order). For each cut-off ``k = 0..n-2``:
    ``CCR(k)`` = correctly classified known samples at positions ``> k`` over ``N_known`` and
    ``FPR(k)`` = unknown samples at positions ``>= k`` over ``N_unknown``; position ``n-1`` is the point
    (0, 0); the end points (0, 0) and (1, 1) are added, the points sorted in descending order and the
    trapezoids summed. The ``> k`` vs ``>= k`` asymmetry costs a perfect separation ``1/(2 N_k N_u)``:
    its OSCR is ``1 - 1/(2 N_known N_unknown)``.
    """
    ks, us = np.asarray(known_scores, np.float64), np.asarray(unknown_scores, np.float64)
    correct = np.asarray(known_correct, bool)
    if ks.ndim != 1 or us.ndim != 1 or correct.shape != ks.shape or not len(ks) or not len(us):
        raise ValueError("oscr needs non-empty 1-D known/unknown scores and one correctness flag per known")
    scores = np.concatenate([ks, us])
    k_target = np.concatenate([correct.astype(np.float64), np.zeros(len(us))])
    u_target = np.concatenate([np.zeros(len(ks)), np.ones(len(us))])
    order = np.argsort(scores, kind="stable")
    sk, su = k_target[order], u_target[order]
    n = len(scores)
    suffix_k = np.concatenate([np.cumsum(sk[::-1])[::-1], [0.0]])  # suffix_k[i] = sum(sk[i:])
    suffix_u = np.concatenate([np.cumsum(su[::-1])[::-1], [0.0]])
    cuts = np.arange(n - 1)
    ccr = np.concatenate([suffix_k[cuts + 1] / len(ks), [0.0, 0.0, 1.0]])
    fpr = np.concatenate([suffix_u[cuts] / len(us), [0.0, 0.0, 1.0]])
    points = sorted(zip(fpr.tolist(), ccr.tolist()), reverse=True)
    f, c = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    area = float(np.sum((f[:-1] - f[1:]) * (c[:-1] + c[1:]) / 2.0))
    return area, f, c


def oscr(known_scores: np.ndarray, known_correct: np.ndarray, unknown_scores: np.ndarray) -> float:
    return oscr_curve(known_scores, known_correct, unknown_scores)[0]


def open_set_threshold(num_known: int, smoothing: float = 0.5) -> float:
    """The MSP cut-off of the open-set F1: ``smoothing/K + (1 - smoothing) - 0.05``."""
    if num_known < 1:
        raise ValueError(f"num_known must be >= 1, got {num_known}")
    return smoothing / num_known + (1.0 - smoothing) - 0.05


def open_set_predictions(logits: np.ndarray, temp: float = 1.0, smoothing: float = 0.5) -> np.ndarray:
    """``argmax`` where ``MSP > threshold``, else -1 (unknown)."""
    logits = np.asarray(logits)
    keep = msp(logits, temp) > open_set_threshold(logits.shape[1], smoothing)
    return np.where(keep, logits.argmax(1), -1)


def open_set_f1(
    known_logits: np.ndarray, known_labels: np.ndarray, unknown_logits: np.ndarray,
    temp: float = 1.0, smoothing: float = 0.5,
) -> float:  # fmt: skip
    """Macro-F1 over the known classes and "unknown" (sklearn ``f1_score(average='macro')``)."""
    true = np.concatenate([np.asarray(known_labels, np.int64), np.full(len(unknown_logits), -1)])
    pred = open_set_predictions(np.concatenate([known_logits, unknown_logits]), temp, smoothing)
    return float(f1_score(true, pred, average="macro"))


#: The protocol scores of :func:`osr_metrics`: name -> ``f(logits, temp)`` (higher = known).
PROTOCOL_SCORE_FUNCTIONS = {
    "msp": msp,
    "maxlogit": lambda logits, temp=1.0: np.asarray(logits, dtype=np.float64).max(1),
}


def osr_metrics(
    known: Cache, unknown: Cache, temp: float = 1.0, smoothing: float = 0.5, score: str = "msp"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """``({"accuracy", "AUROC", "OSCR", "AUPR-In", "AUPR-Out", "FPR@95"[, "F1"]}, OSCR curve)`` of the
    protocol score ``score`` (``msp``, with the open-set F1, or ``maxlogit``) on the known test cache
    and the unknown cache."""
    if score not in PROTOCOL_SCORE_FUNCTIONS:
        raise ValueError(
            f"unknown OSR protocol score '{score}'; valid: {', '.join(PROTOCOL_SCORE_FUNCTIONS)}"
        )
    fn = PROTOCOL_SCORE_FUNCTIONS[score]
    s_known, s_unknown = fn(known.logits, temp), fn(unknown.logits, temp)
    correct = known.logits.argmax(1) == known.labels
    area, fpr, ccr = oscr_curve(s_known, correct, s_unknown)
    metrics = {
        "accuracy": accuracy(known.logits, known.labels),
        **ood_metrics(s_known, s_unknown),
        "OSCR": area,
    }
    if score == "msp":
        metrics["F1"] = open_set_f1(known.logits, known.labels, unknown.logits, temp, smoothing)
    return metrics, {"fpr": fpr, "ccr": ccr}


def posthoc_metrics(
    train: Cache, known: Cache, unknown: Cache, scores: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """The spine's four OOD metrics of every post-hoc score in ``scores`` (name -> parameters)."""
    out = {}
    for name, params in scores.items():
        score = build_score(name, **params)
        if score.requires_fit:
            score.fit(train)
        out[name] = ood_metrics(score.score(known), score.score(unknown))
    return out

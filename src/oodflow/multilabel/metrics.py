"""Multi-label metrics: mAP (the ID metric), head labels and tail-ID OOD evaluation.

mAP definition used here: for each label j with at least one positive test image, the average
precision :math:`AP_j` = ``sklearn.metrics.average_precision_score(y[:, j], sigmoid(z[:, j]))``
(step-wise precision at each recall level, no interpolation); mAP is their unweighted mean over those
labels. Labels without a positive are left out (AP is undefined there). EDGE's ``validate.py``
instead integrates the precision-recall curve with the trapezoid rule (``auc(recall, precision)``),
which gives slightly different values.

Tail-ID evaluation (EDGE's ``get_id_auc``, Sun et al. AAAI 2025): labels are ranked by their number of
images in the **evaluated test set**, as upstream ranks them (descending; ties: the higher label index
first, the order of an ascending argsort reversed); for ``j`` the ID subset keeps the test images that
carry none of the ``j`` most frequent ("head") labels, and the OOD metrics are computed on it (``j = 0``:
all images). ``tail.rank_by: train`` ranks by the training set's counts instead (what this project did
before issue 18).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from oodflow.metrics import ood_metrics


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """mAP over the labels with at least one positive (see the module docstring)."""
    from sklearn.metrics import average_precision_score

    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != scores.shape:
        raise ValueError(f"targets {y_true.shape} and scores {scores.shape} must be equal (N, C) arrays")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain non-finite values")
    present = np.flatnonzero(y_true.sum(axis=0) > 0)
    if present.size == 0:
        raise ValueError("no label has a positive image: mAP is undefined")
    return float(np.mean([average_precision_score(y_true[:, j], scores[:, j]) for j in present]))


def head_labels(y: np.ndarray) -> np.ndarray:
    """Label indices from the most to the least frequent in the multi-hot targets ``y`` (EDGE ranks by
    the evaluated test set's); ties: the higher label index first."""
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"head_labels needs (N, C) multi-hot targets, got shape {y.shape}")
    return np.argsort(y.sum(axis=0), kind="stable")[::-1].copy()


def tail_mask(y_test: np.ndarray, head_order: np.ndarray, j: int) -> np.ndarray:
    """Test images that carry none of the ``j`` head labels (all images for ``j = 0``)."""
    if j < 0:
        raise ValueError(f"j must be >= 0, got {j}")
    head = np.asarray(head_order)[:j]
    return np.asarray(y_test)[:, head].sum(axis=1) == 0


def tail_rows(
    id_scores: np.ndarray,
    ood_scores: Mapping[str, np.ndarray],
    y_test: np.ndarray,
    head_order: np.ndarray,
    js: Sequence[int],
    min_images: int = 2,
) -> list[dict]:
    """One row per (j, OOD set, metric): ``{"j", "n_id", "ood_set", "metric", "value"}``; a ``j``
    whose subset has fewer than ``min_images`` images is skipped (its metrics are meaningless)."""
    rows = []
    for j in js:
        keep = tail_mask(y_test, head_order, j)
        if keep.sum() < min_images:
            continue
        for ood, scores in ood_scores.items():
            for metric, value in ood_metrics(id_scores[keep], scores).items():
                rows.append(
                    {"j": int(j), "n_id": int(keep.sum()), "ood_set": ood, "metric": metric, "value": value}
                )
    return rows

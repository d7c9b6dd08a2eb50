"""OOD-detection metrics on ID and OOD score arrays (numpy and scikit-learn only).

Conventions (fixed for the whole project; docs/references.md, "Metric conventions"):

* Every score is "higher = more in-distribution (ID)". Metrics take ``id_scores`` and
  ``ood_scores`` separately, never a mixed array with labels.
* **ID is the positive class** (energy_ood / EDGE / ADAPT convention).
* ``AUROC``: area under the ROC curve with ID positive, :func:`sklearn.metrics.roc_auc_score`.
* ``AUPR-In``: average precision (:func:`sklearn.metrics.average_precision_score`, not a
  trapezoid area) with ID positive and the score as is.
* ``AUPR-Out``: average precision with OOD positive and the score negated.
* ``FPR@95``: the fraction of **OOD** samples accepted as ID at the threshold where about 95% of
  the ID samples are accepted (ODIN/energy convention), chosen with the rule of Hendrycks'
  ``fpr_and_fdr_at_recall`` (see :func:`fpr_at_95_tpr`). OpenOOD's reversed quantity (fraction of
  ID flagged as OOD when 95% of OOD is detected) is a different number and is only available as
  :func:`fpr_at_95_tpr_openood`.
* All values are fractions in ``[0, 1]``, never percentages.

Every function validates its inputs: both score arrays must be 1-D, non-empty and finite; the
:class:`ValueError` names the offending input (``"ood_scores contains 3 NaN values"``). A metric
with only one class present is exactly the case of an empty ID or OOD array.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = [
    "accuracy",
    "draw_ood_subsets",
    "ood_metrics_over_draws",
    "aupr_in",
    "aupr_out",
    "auroc",
    "fpr_at_95_tpr",
    "fpr_at_95_tpr_openood",
    "fpr_at_95_tpr_percentile",
    "ood_metrics",
]


def _as_scores(values: object, name: str) -> np.ndarray:
    """``values`` as a finite, non-empty 1-D float64 array, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} is not a numeric array ({err})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise ValueError(f"{name} contains {n_nan} NaN values")
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise ValueError(f"{name} contains {n_inf} infinite values")
    return arr


def _pair(id_scores: object, ood_scores: object) -> tuple[np.ndarray, np.ndarray]:
    return _as_scores(id_scores, "id_scores"), _as_scores(ood_scores, "ood_scores")


def _labelled(id_s: np.ndarray, ood_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated scores and labels with ID = 1, OOD = 0."""
    scores = np.concatenate([id_s, ood_s])
    is_id = np.concatenate([np.ones(id_s.size, dtype=np.int64), np.zeros(ood_s.size, np.int64)])
    return scores, is_id


def auroc(id_scores: object, ood_scores: object) -> float:
    """Area under the ROC curve, ID positive (0.5 = chance, 1 = perfect separation)."""
    scores, is_id = _labelled(*_pair(id_scores, ood_scores))
    return float(roc_auc_score(is_id, scores))


def aupr_in(id_scores: object, ood_scores: object) -> float:
    """Average precision with ID as the positive class and the score as is."""
    scores, is_id = _labelled(*_pair(id_scores, ood_scores))
    return float(average_precision_score(is_id, scores))


def aupr_out(id_scores: object, ood_scores: object) -> float:
    """Average precision with OOD as the positive class and the negated score."""
    scores, is_id = _labelled(*_pair(id_scores, ood_scores))
    return float(average_precision_score(1 - is_id, -scores))


def fpr_at_95_tpr(id_scores: object, ood_scores: object, recall: float = 0.95) -> float:
    """Fraction of OOD samples accepted as ID where about ``recall`` of the ID samples are kept.

    A sample is accepted as ID when its score is ``>= t``. The operating point follows Hendrycks'
    ``fpr_and_fdr_at_recall`` (used by OE, energy_ood, EDGE, ADAPT):

    1. the candidate thresholds ``t`` are the distinct scores (ties form one step); at each,
       ``recall(t)`` is the fraction of ID scores ``>= t`` and ``FP(t)`` the number of OOD
       scores ``>= t``;
    2. thresholds below the highest one that already reaches full recall are dropped;
    3. the threshold with the smallest ``|recall(t) - recall|`` is chosen; among equally close
       ones the lowest threshold (so the highest recall, and the most false positives) wins;
    4. the result is ``FP(t) / number of OOD samples``.

    This is not "the first threshold with recall >= 0.95": the chosen point may keep slightly
    fewer than 95% of the ID samples. Recall is computed as ``count / n_id`` in float64, exactly
    as in the reference, so float ties in step 3 resolve the same way.
    """
    id_s, ood_s = _pair(id_scores, ood_scores)
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall must be in (0, 1], got {recall}")
    scores, is_id = _labelled(id_s, ood_s)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_id = scores[order], is_id[order]
    # index of the last sample of each group of equal scores (descending order)
    step_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tp = np.cumsum(sorted_id)[step_ends]
    fp = step_ends + 1 - tp
    full = int(np.searchsorted(tp, id_s.size))  # first step with every ID sample accepted
    # walk from the full-recall step back to the highest threshold: argmin then picks, among
    # equally close points, the one with the lowest threshold
    recall_curve = tp[full::-1] / id_s.size
    best = int(np.argmin(np.abs(recall_curve - recall)))
    return float(fp[full::-1][best] / ood_s.size)


def fpr_at_95_tpr_openood(id_scores: object, ood_scores: object) -> float:
    """OpenOOD's FPR@95: fraction of ID samples flagged as OOD when 95% of OOD is detected.

    OOD is the positive class with score ``-s``; on :func:`sklearn.metrics.roc_curve` (default
    ``drop_intermediate=True``, as OpenOOD calls it) the value is the FPR of the first point with
    TPR >= 0.95. Reported by OpenOOD and pytorch-ood; not comparable with :func:`fpr_at_95_tpr`.
    """
    scores, is_id = _labelled(*_pair(id_scores, ood_scores))
    fpr, tpr, _ = roc_curve(1 - is_id, -scores)
    return float(fpr[int(np.argmax(tpr >= 0.95))])


def fpr_at_95_tpr_percentile(id_scores: object, ood_scores: object, recall: float = 0.95) -> float:
    """PALM's FPR@95 (jeff024/PALM@eecb59ac, ``util/evaluations/metrics.py`` ``cal_metric``): the
    fraction of OOD scores strictly above ``numpy.percentile(id_scores, 100 * (1 - recall))`` (linear
    interpolation between order statistics).

    Same quantity as :func:`fpr_at_95_tpr` (OOD accepted where ~95% of ID is kept); the threshold
    differs only by where it falls between the ID scores next to the 5% quantile, so the two differ
    by the fraction of OOD scores in that gap (at most one or two ID order statistics wide). Not used
    by the tables; available for a paper whose protocol it is.
    """
    id_s, ood_s = _pair(id_scores, ood_scores)
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall must be in (0, 1], got {recall}")
    threshold = np.percentile(id_s, 100.0 * (1.0 - recall))
    return float(np.mean(ood_s > threshold))


def accuracy(logits_or_pred: object, labels: object) -> float:
    """Top-1 accuracy from logits ``(N, K)`` (argmax) or integer predictions ``(N,)``."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.size == 0:
        raise ValueError("labels is empty")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    out = np.asarray(logits_or_pred)
    if out.ndim == 2:
        if not np.isfinite(out).all():
            raise ValueError(f"logits contain {int((~np.isfinite(out)).sum())} non-finite values")
        pred = out.argmax(axis=1)
    elif out.ndim == 1:
        if not np.issubdtype(out.dtype, np.integer):
            raise ValueError(f"1-D predictions must be integers, got dtype {out.dtype}")
        pred = out
    else:
        raise ValueError(f"logits_or_pred must be (N, K) logits or (N,) predictions, got shape {out.shape}")
    if pred.shape[0] != y.shape[0]:
        raise ValueError(f"{pred.shape[0]} predictions but {y.shape[0]} labels")
    return float(np.mean(pred == y))


def ood_metrics(id_scores: object, ood_scores: object) -> dict[str, float]:
    """All four OOD metrics as ``{"AUROC", "AUPR-In", "AUPR-Out", "FPR@95"}`` fractions."""
    id_s, ood_s = _pair(id_scores, ood_scores)
    return {
        "AUROC": auroc(id_s, ood_s),
        "AUPR-In": aupr_in(id_s, ood_s),
        "AUPR-Out": aupr_out(id_s, ood_s),
        "FPR@95": fpr_at_95_tpr(id_s, ood_s),
    }


def draw_ood_subsets(n_ood: int, size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, size)`` sorted indices of OOD subsets, each drawn without replacement.

    The energy and OE papers score ``len(ID test) // 5`` OOD samples and average the metrics over
    ``draws`` random subsets (docs/references.md); AUPR in particular depends on this ratio.
    """
    if not 0 < size <= n_ood:
        raise ValueError(f"subset size must be in 1..{n_ood} (the OOD set size), got {size}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    return np.stack([np.sort(rng.choice(n_ood, size=size, replace=False)) for _ in range(draws)])


def ood_metrics_over_draws(id_scores: object, ood_scores: object, subsets: np.ndarray) -> dict[str, float]:
    """:func:`ood_metrics` averaged over OOD subsets (rows of ``subsets``, see :func:`draw_ood_subsets`)."""
    id_s, ood_s = _pair(id_scores, ood_scores)
    per_draw = [ood_metrics(id_s, ood_s[idx]) for idx in np.asarray(subsets)]
    return {key: float(np.mean([m[key] for m in per_draw])) for key in per_draw[0]}

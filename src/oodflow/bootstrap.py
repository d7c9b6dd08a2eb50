"""Bootstrap confidence intervals of AUROC and FPR@95, fast enough for every cell of a table.

A bootstrap replicate resamples the ID scores and the OOD scores independently, with replacement
(a stratified bootstrap: each replicate keeps both sample sizes). Resampling is the same as giving
sample ``i`` an integer weight ``w_i`` (how often it was drawn), so a replicate's metric is a
*weighted* metric of the original scores, and all replicates share one sort of the scores:

* AUROC = Σ_i Σ_j w_i v_j [1(s_i > t_j) + ½·1(s_i = t_j)] / (n·m) for ID scores ``s`` with weights
  ``w`` and OOD scores ``t`` with weights ``v``: the OOD weight below each ID score is a cumulative
  sum over the sorted OOD scores, so a replicate costs O(n + m).
* FPR@95 follows :func:`oodflow.metrics.fpr_at_95_tpr` (Hendrycks' operating point) on the weighted
  step curve over the distinct scores; a score that a replicate did not draw repeats the step above
  it, which the rule's tie-break resolves to the same value.

Both equal the plain metrics of the explicitly resampled scores (a test checks it), for
``replicates × (n + m)`` work instead of a sort per replicate.
"""

from __future__ import annotations

import numpy as np

from oodflow.metrics import _pair

__all__ = ["bootstrap_metrics", "draw_weights", "interval", "weighted_auroc", "weighted_fpr_at_95_tpr"]


def draw_weights(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, n) counts of a resample with replacement of ``n`` items, each row summing to n."""
    idx = rng.integers(0, n, size=(replicates, n))
    offsets = np.arange(replicates)[:, None] * n
    return np.bincount((idx + offsets).ravel(), minlength=replicates * n).reshape(replicates, n)


def weighted_auroc(id_s: np.ndarray, ood_s: np.ndarray, w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """AUROC (ID positive) per row of the weights ``w`` (B, n) of ``id_s`` and ``v`` (B, m) of ``ood_s``."""
    order = np.argsort(ood_s, kind="mergesort")
    t = ood_s[order]
    below = np.searchsorted(t, id_s, side="left")  # OOD scores < s_i
    upto = np.searchsorted(t, id_s, side="right")  # OOD scores <= s_i
    cum = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(v[:, order], axis=1)], axis=1)
    wins = cum[:, below] + 0.5 * (cum[:, upto] - cum[:, below])  # (B, n): OOD weight beaten by s_i
    return (w * wins).sum(axis=1) / (w.sum(axis=1) * v.sum(axis=1))


def weighted_fpr_at_95_tpr(
    id_s: np.ndarray, ood_s: np.ndarray, w: np.ndarray, v: np.ndarray, recall: float = 0.95
) -> np.ndarray:
    """FPR@95 of :func:`oodflow.metrics.fpr_at_95_tpr` per row of the weights (see the module)."""
    scores = np.concatenate([id_s, ood_s])
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    step_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    weights_id = np.concatenate([w, np.zeros_like(v)], axis=1)[:, order]
    weights_ood = np.concatenate([np.zeros_like(w), v], axis=1)[:, order]
    tp = np.cumsum(weights_id, axis=1)[:, step_ends]  # (B, K) ID weight at or above each step
    fp = np.cumsum(weights_ood, axis=1)[:, step_ends]
    n_id, n_ood = w.sum(axis=1), v.sum(axis=1)
    out = np.empty(w.shape[0])
    for b in range(w.shape[0]):  # K steps: cheap, and the rule's tie-break is clearest as written
        full = int(np.searchsorted(tp[b], n_id[b]))
        curve = tp[b, full::-1] / n_id[b]
        best = int(np.argmin(np.abs(curve - recall)))
        out[b] = fp[b, full::-1][best] / n_ood[b]
    return out


def bootstrap_metrics(
    id_scores: object, ood_scores: object, replicates: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``{"AUROC": (B,), "FPR@95": (B,)}`` over ``replicates`` stratified bootstrap resamples."""
    id_s, ood_s = _pair(id_scores, ood_scores)
    w = draw_weights(id_s.size, replicates, rng)
    v = draw_weights(ood_s.size, replicates, rng)
    return {"AUROC": weighted_auroc(id_s, ood_s, w, v), "FPR@95": weighted_fpr_at_95_tpr(id_s, ood_s, w, v)}


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval holding ``level`` of the replicate values."""
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)

"""Adversarial OOD evaluation as tidy tables and the AUROC-vs-eps figure.

One row per (run, OOD set, score, eps) with the four metrics of :func:`oodflow.metrics.ood_metrics`
(fractions, not percent), built from :func:`oodflow.adversarial.adversarial_auroc_table`. The
figure averages a metric over the OOD sets,
:math:`\\bar m(\\epsilon) = \\frac{1}{|O|}\\sum_{o \\in O} m_o(\\epsilon)`, one line per run, one
panel per score.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from oodflow.report.tables import METRICS

__all__ = ["COLUMNS", "adversarial_figure", "adversarial_frame", "combine", "mean_over_ood_sets"]

COLUMNS = ("benchmark", "run", "model", "method", "score", "ood_set", "eps", *METRICS)


def adversarial_frame(
    rows: Iterable[Mapping[str, Any]], *, benchmark: str, run: str, model: str, method: str
) -> pd.DataFrame:
    """The rows of :func:`~oodflow.adversarial.adversarial_auroc_table` (``eps, ood_set, score`` and
    the metrics) labelled with the run, ordered by OOD set, score, then eps (as given)."""
    base = {"benchmark": benchmark, "run": run, "model": model, "method": method}
    frame = pd.DataFrame([{**base, **row} for row in rows], columns=list(COLUMNS))
    missing = [c for c in COLUMNS if frame[c].isna().any()]
    if missing:
        raise ValueError(f"adversarial rows lack {', '.join(missing)}")
    return frame


def combine(paths: Sequence[str]) -> pd.DataFrame:
    """The per-run CSVs concatenated in the given order; each must have exactly :data:`COLUMNS`."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        if tuple(frame.columns) != COLUMNS:
            raise ValueError(f"{path}: columns {list(frame.columns)}, expected {list(COLUMNS)}")
        frames.append(frame)
    if not frames:
        raise ValueError("no adversarial tables to combine")
    return pd.concat(frames, ignore_index=True)


def mean_over_ood_sets(frame: pd.DataFrame, metric: str = "AUROC") -> pd.DataFrame:
    """``run, score, eps, <metric>``: the metric averaged over the OOD sets, in first-seen order of
    run and score and ascending eps."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}'; valid: {', '.join(METRICS)}")
    out = frame.groupby(["run", "score", "eps"], sort=False, as_index=False)[metric].mean()
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(frame.run, frame.score)))}
    out["_key"] = [order[(r, s)] for r, s in zip(out.run, out.score)]
    return out.sort_values(["_key", "eps"], kind="stable").drop(columns="_key").reset_index(drop=True)


def adversarial_figure(
    frame: pd.DataFrame, *, out: str, title: str, metric: str = "AUROC", dpi: int = 120
) -> None:
    """``metric`` (mean over OOD sets) vs eps: one panel per score, one line per run."""
    from oodflow.report.figures import _save, plt

    means = mean_over_ood_sets(frame, metric)
    scores = list(dict.fromkeys(means.score))
    fig, axes = plt.subplots(1, len(scores), figsize=(4.2 * len(scores), 3.6), squeeze=False, sharey=True)
    for ax, score in zip(axes[0], scores):
        for run, group in means[means.score == score].groupby("run", sort=False):
            ax.plot(group.eps, group[metric], marker="o", ms=3, lw=1.2, label=run)
        ax.set_title(score, fontsize=10)
        ax.set_xlabel("eps (FGSM step)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{metric} (mean over OOD sets)")
    axes[0][-1].legend(fontsize=6, loc="best", ncol=1 + len(set(means.run)) // 12)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, out, dpi)

"""Sweeps (config ``sweeps``, :mod:`oodflow.sweeps`): metrics against the swept value.

From the long-form ``metrics.csv``: per swept value and score, each OOD metric averaged over the OOD
sets, :math:`\\bar m(v) = \\frac{1}{|O|}\\sum_{o \\in O} m_o(\\text{run}(v))`, plus the run's ID accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd

from oodflow.report.tables import METRICS

__all__ = ["sweep_figure", "sweep_table"]


def sweep_table(metrics: pd.DataFrame, runs: Mapping[str, Any], sweep: str, param: str) -> pd.DataFrame:
    """``sweep, param, value, run, score, <metrics>, accuracy``: one row per (value, score), values in
    the sweep's order, scores in metrics.csv order. Every run of ``runs`` (name -> value) must be in
    ``metrics``."""
    missing = [run for run in runs if run not in set(metrics.run)]
    if missing:
        raise ValueError(f"sweep '{sweep}': metrics.csv has no rows of run(s) {', '.join(missing)}")
    rows = []
    for run, value in runs.items():
        group = metrics[metrics.run == run]
        acc = float(group[group.metric == "accuracy"].value.iloc[0])
        ood = group[group.metric.isin(METRICS)]
        for score, sgroup in ood.groupby("score", sort=False):
            means = {m: float(sgroup[sgroup.metric == m].value.mean()) for m in METRICS}
            rows.append(
                {"sweep": sweep, "param": param, "value": value, "run": run, "score": score, **means,
                 "accuracy": acc}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["sweep", "param", "value", "run", "score", *METRICS, "accuracy"])


def sweep_figure(table: pd.DataFrame, *, out: str, title: str, metric: str = "AUROC", dpi: int = 120) -> None:
    """``metric`` (mean over OOD sets) per score and ID accuracy vs the swept value. Numeric values
    are placed on a numeric axis; any other values at equal steps in sweep order."""
    from oodflow.report.figures import _save, plt

    values = list(dict.fromkeys(table.value))
    numeric = all(isinstance(v, Number) and not isinstance(v, bool) for v in values)
    where = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    fig, (ax, acc_ax) = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for score, group in table.groupby("score", sort=False):
        ax.plot([where[v] for v in group.value], group[metric], marker="o", ms=3, lw=1.2, label=score)
    first = table.drop_duplicates("run")
    acc_ax.plot([where[v] for v in first.value], first.accuracy, marker="o", ms=3, lw=1.2, color="black")
    for a, label in ((ax, f"{metric} (mean over OOD sets)"), (acc_ax, "ID accuracy")):
        a.set_xlabel(str(table.param.iloc[0]) if len(table) else "value")
        a.set_ylabel(label)
        a.grid(alpha=0.3)
        if not numeric:
            a.set_xticks(np.arange(len(values)), [str(v) for v in values], rotation=45, fontsize=7)
    ax.legend(title="score", fontsize=7, title_fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, out, dpi)

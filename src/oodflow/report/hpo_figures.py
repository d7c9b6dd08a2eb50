"""Figures of a hyper-parameter search: the optimisation history and the parameter importances.

Drawn with matplotlib from the trials themselves (not ``optuna.visualization``, which needs
plotly), with the PNG metadata of :mod:`oodflow.report.figures`, so equal studies give equal bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from oodflow.report.figures import _save  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from optuna.trial import FrozenTrial


def history(trials: list[FrozenTrial], *, title: str, out: str, dpi: int = 120) -> None:
    """Objective value of every complete trial (dots) and the running best (step line), by trial
    number; pruned and failed trials are marked on the x axis."""
    done = [t for t in trials if t.state.name == "COMPLETE"]
    other = [t for t in trials if t.state.name in ("PRUNED", "FAIL")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if done:
        x = np.array([t.number for t in done])
        y = np.array([t.value for t in done], dtype=float)
        ax.plot(x, y, "o", color="tab:blue", label="trial")
        ax.step(x, np.minimum.accumulate(y), where="post", color="tab:red", label="best so far")
    for state, marker in (("PRUNED", "x"), ("FAIL", "|")):
        numbers = [t.number for t in other if t.state.name == state]
        if numbers:
            ax.plot(
                numbers,
                np.zeros(len(numbers)),
                marker,
                color="grey",
                label=state.lower(),
                clip_on=False,
                transform=ax.get_xaxis_transform(),  # on the x axis, apart from real values
            )
    if not trials:
        ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("objective (FPR@95, lower is better)")
    ax.set_title(title, fontsize=9)
    if trials:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out, dpi)


def importance(importances: dict[str, float] | str, *, title: str, out: str, dpi: int = 120) -> None:
    """Horizontal bars of the parameter importances (sum 1), or a figure stating why there are none
    (``importances`` is then the reason, e.g. fewer than 2 complete trials)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    if isinstance(importances, str):
        ax.text(0.5, 0.5, f"no parameter importances:\n{importances}", ha="center", va="center", wrap=True)
        ax.set_axis_off()
    else:
        names = sorted(importances, key=lambda k: (importances[k], k))
        ax.barh(names, [importances[k] for k in names], color="tab:blue")
        ax.set_xlim(0, 1)
        ax.set_xlabel("fANOVA importance (fraction of the objective's variance)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, out, dpi)

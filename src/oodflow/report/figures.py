"""Figures: score histograms (ID vs each OOD set) and ROC curves, as PNG; ROC points as CSV.

All scores are "higher = more ID"; ROC curves treat ID as the positive class, so the x axis is the
fraction of OOD accepted and the y axis the fraction of ID kept (FPR@95 is read off at y = 0.95).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from oodflow.io import atomic_path, write_text  # noqa: E402
from oodflow.metrics import auroc, fpr_at_95_tpr  # noqa: E402

_PNG_META = {"Software": None}  # keep PNG bytes independent of the matplotlib version


def _save(fig, out: str, dpi: int) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=_PNG_META)
    plt.close(fig)


def _id_vs_ood(ax, id_scores: np.ndarray, values: np.ndarray, label: str, bins: int) -> None:
    """ID vs OOD score densities on bins shared by both (clipped to their 0.5-99.5 percentiles)."""
    lo, hi = np.percentile(np.concatenate([id_scores, values]), [0.5, 99.5])
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    # one filled polygon per histogram (not one rectangle per bin): the same picture, drawn 5x faster
    style = {"density": True, "alpha": 0.55, "histtype": "stepfilled"}
    ax.hist(np.clip(id_scores, lo, hi), edges, label="ID test", color="tab:blue", **style)
    ax.hist(np.clip(values, lo, hi), edges, label=label, color="tab:red", **style)


def histograms(
    id_scores: np.ndarray,
    ood: Mapping[str, np.ndarray],
    *,
    title: str,
    out: str,
    bins: int = 50,
    dpi: int = 120,
) -> None:
    """One panel per OOD set: ID vs OOD score densities on shared bins, with AUROC and FPR@95."""
    n = len(ood)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, ood.items()):
        _id_vs_ood(ax, id_scores, values, name, bins)
        ax.set_title(
            f"{name}: AUROC {100 * auroc(id_scores, values):.1f}, "
            f"FPR@95 {100 * fpr_at_95_tpr(id_scores, values):.1f}",
            fontsize=9,
        )
        ax.set_xlabel("score (higher = more ID)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out, dpi)


def comparison_histograms(
    runs: Mapping[str, Mapping[str, np.ndarray]],
    ood_sets: Sequence[str],
    *,
    title: str,
    out: str,
    bins: int = 50,
    dpi: int = 120,
) -> None:
    """Score distributions of several runs side by side: one row per OOD set, one column per run.

    ``runs`` maps a run name to its score arrays (``id`` = ID test, plus one per OOD set). Each panel
    shows ID vs that OOD set on bins shared by the two, titled with FPR@95 and AUROC; the columns
    keep their own x range, since fine-tuning moves a score's scale (energy margins).
    """
    names = list(runs)
    fig, axes = plt.subplots(
        len(ood_sets), len(names), figsize=(4.2 * len(names), 2.4 * len(ood_sets)), squeeze=False
    )
    for col, run in enumerate(names):
        scores = runs[run]
        for row, ood in enumerate(ood_sets):
            ax = axes[row, col]
            id_scores, values = scores["id"], scores[ood]
            _id_vs_ood(ax, id_scores, values, ood, bins)
            ax.set_title(
                f"{run} | {ood}: FPR@95 {100 * fpr_at_95_tpr(id_scores, values):.1f}, "
                f"AUROC {100 * auroc(id_scores, values):.1f}",
                fontsize=8,
            )
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6)
        axes[-1, col].set_xlabel("score (higher = more ID)", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # room for the title
    _save(fig, out, dpi)


def roc_curves(
    id_scores: np.ndarray, ood: Mapping[str, np.ndarray], *, title: str, out: str, dpi: int = 120
) -> None:
    """ROC curve per OOD set (ID positive) with the 95%-TPR line."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for name, values in ood.items():
        fpr, tpr = _roc(id_scores, values)
        ax.plot(fpr, tpr, label=f"{name} ({100 * auroc(id_scores, values):.1f})", lw=1.3)
    ax.axhline(0.95, color="grey", ls=":", lw=1)
    ax.plot([0, 1], [0, 1], color="lightgrey", lw=1)
    ax.set_xlabel("OOD accepted (FPR)")
    ax.set_ylabel("ID kept (TPR)")
    ax.set_title(title, fontsize=10)
    ax.legend(title="OOD set (AUROC)", fontsize=7, title_fontsize=7, loc="lower right")
    fig.tight_layout()
    _save(fig, out, dpi)


def _roc(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    fpr, tpr, _ = roc_curve(labels, np.r_[id_scores, ood_scores])
    return fpr, tpr


def roc_csv(id_scores: np.ndarray, ood: Mapping[str, np.ndarray], out: str, points: int = 101) -> None:
    """ROC of ID test vs all OOD sets pooled, resampled at ``points`` FPR values (for ``dvc plots``)."""
    fpr, tpr = _roc(id_scores, np.concatenate(list(ood.values())))
    grid = np.linspace(0.0, 1.0, points)
    best_tpr = tpr[np.searchsorted(fpr, grid, side="right") - 1]  # highest TPR with FPR <= grid
    lines = ["fpr,tpr"] + [f"{x:.4f},{y:.6f}" for x, y in zip(grid, best_tpr)]
    write_text(out, "\n".join(lines) + "\n")


def sample_grid(sets: Mapping[str, np.ndarray], *, out: str, per_set: int = 12, dpi: int = 120) -> None:
    """A grid of the first ``per_set`` images (uint8, (N, 28, 28)) of each named set."""
    fig, axes = plt.subplots(len(sets), per_set, figsize=(per_set * 0.8, len(sets) * 0.9), squeeze=False)
    for row, (name, x) in zip(axes, sets.items()):
        for i, ax in enumerate(row):
            if i < len(x):
                ax.imshow(x[i], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    _save(fig, out, dpi)


def pca_2d(fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top-2 principal directions ``(D, 2)`` of ``fit`` (rows = samples), signs fixed
    so that each direction's largest-magnitude entry is positive (stable across LAPACK builds)."""
    fit = np.asarray(fit, dtype=np.float64)
    mean = fit.mean(0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    comps = vt[:2].T
    signs = np.sign(comps[np.abs(comps).argmax(0), np.arange(comps.shape[1])])
    return mean, comps * np.where(signs == 0, 1.0, signs)


def prototype_projection(
    id_emb: np.ndarray,
    id_labels: np.ndarray,
    prototypes: np.ndarray,
    proto_labels: np.ndarray,
    ood_emb: np.ndarray,
    *,
    ood_name: str,
    title: str,
    out: str,
    max_points: int = 2000,
    dpi: int = 120,
) -> None:
    """2-D PCA (fitted on the ID embeddings) of ID training embeddings coloured by class, one OOD
    set in black (translucent) and the prototypes as stars in their class colour: how compact the classes are
    around their prototypes and where OOD samples fall. Points are evenly strided subsets."""
    mean, comps = pca_2d(id_emb)
    pick = slice(None, None, max(1, len(id_emb) // max_points))
    opick = slice(None, None, max(1, len(ood_emb) // max_points))
    ids, oods, protos = ((a - mean) @ comps for a in (id_emb[pick], ood_emb[opick], prototypes))
    cmap = plt.get_cmap("tab10" if proto_labels.max() < 10 else "tab20")
    n_col = cmap.N
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(oods[:, 0], oods[:, 1], s=4, c="black", alpha=0.25, label=f"OOD: {ood_name}", linewidths=0)
    ax.scatter(
        ids[:, 0], ids[:, 1], s=4, c=[cmap(c % n_col) for c in id_labels[pick]], alpha=0.6, linewidths=0
    )
    ax.scatter(
        protos[:, 0], protos[:, 1], s=90, marker="*", c=[cmap(c % n_col) for c in proto_labels],
        edgecolors="black", linewidths=0.7, label="prototypes",
    )  # fmt: skip
    ax.scatter([], [], s=10, c="tab:blue", label="ID train (colour = class)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, out, dpi)

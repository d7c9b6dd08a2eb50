"""The cross-paper table: every (training method × score) of one benchmark side by side.

Each row is a training run (its seeds pooled: ``baseline-s0``, ``baseline-s1``, ... are one row, see
:mod:`oodflow.seeds`) scored by one score; the columns are AUROC and FPR@95 averaged over the OOD sets:
mean ± std over seeds (std empty with one seed) and a stratified-bootstrap 95 % interval
(:mod:`oodflow.bootstrap`): in each replicate every (seed, OOD set) pair is resampled, the metrics are
averaged over sets and seeds, and the interval is the 2.5–97.5 percentile range of those averages.
Rows are ranked by mean AUROC. The ``paper`` column says which reproduced paper a training method
comes from, so a reader sees the five papers' methods on one benchmark: the open-set recognition
paper's objectives (``arpl``, ``dias``) and the multi-label paper's (``edge``, one-hot targets) are
spine methods too (:mod:`oodflow.methods.open_set`, :mod:`oodflow.methods.edge`), trained on the
benchmark's ID data and scored like the others; their labels say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oodflow.bootstrap import bootstrap_metrics, interval
from oodflow.io import load_npz
from oodflow.seeding import derive_seed

#: The paper (or common baseline) each training method reproduces; methods not listed show their name.
PAPER_OF_METHOD = {
    "ce": "baseline",
    "oe": "OE (Hendrycks 2019)",
    "energy_ft": "Food-101 / energy FT",
    "aoe": "AOE",
    "palm": "ADAPT (PALM base)",
    "adapt": "ADAPT",
    "softmax": "DIAS (softmax)",
    "arpl_cs": "DIAS (ARPL+CS)",
    # the OSR and multi-label papers' objectives trained on this (single-label) benchmark's spine
    "arpl": "DIAS paper: ARPL objective on this benchmark",
    "dias": "DIAS objective on this benchmark",
    "edge": "EDGE objective on this benchmark (one-hot)",
}
COLUMNS = ("run", "paper", "method", "score", "seeds", "AUROC", "AUROC_std", "AUROC_lo", "AUROC_hi",
           "FPR@95", "FPR@95_std", "FPR@95_lo", "FPR@95_hi")  # fmt: skip
METRICS = ("AUROC", "FPR@95")


def cross_paper_frame(
    groups: Mapping[str, Mapping[str, Any]],
    score_files: Mapping[tuple[str, str], str],
    ood_sets: list[str],
    replicates: int,
    seed: int,
) -> pd.DataFrame:
    """Rows of the table (fractions), ranked by mean AUROC (ties: config order).

    ``groups`` maps a row name (a run without its seed suffix) to ``{"method": ..., "runs": [...]}``
    (optionally ``"paper"``, else :data:`PAPER_OF_METHOD` names it);
    ``score_files`` maps (run, score) -> score npz (``id`` and one array per OOD set).
    """
    from oodflow.metrics import auroc, fpr_at_95_tpr

    scores = list(dict.fromkeys(score for _, score in score_files))
    rows = []
    for name, group in groups.items():
        for score in scores:
            if any((run, score) not in score_files for run in group["runs"]):
                continue
            per_seed = {m: [] for m in METRICS}
            reps = {m: np.zeros(replicates) for m in METRICS}
            for run in group["runs"]:
                data = load_npz(score_files[(run, score)])
                point = {m: [] for m in METRICS}
                for ood in ood_sets:
                    point["AUROC"].append(auroc(data["id"], data[ood]))
                    point["FPR@95"].append(fpr_at_95_tpr(data["id"], data[ood]))
                    rng = np.random.default_rng(derive_seed(seed, "bootstrap", run, score, ood))
                    boot = bootstrap_metrics(data["id"], data[ood], replicates, rng)
                    for m in METRICS:
                        reps[m] += boot[m] / (len(ood_sets) * len(group["runs"]))
                for m in METRICS:
                    per_seed[m].append(float(np.mean(point[m])))
            paper = group.get("paper") or PAPER_OF_METHOD.get(group["method"], group["method"])
            row = {"run": name, "paper": paper,
                   "method": group["method"], "score": score, "seeds": len(group["runs"])}  # fmt: skip
            for m in METRICS:
                values = np.asarray(per_seed[m])
                row[m] = float(values.mean())
                row[f"{m}_std"] = float(values.std(ddof=1)) if values.size > 1 else float("nan")
                row[f"{m}_lo"], row[f"{m}_hi"] = interval(reps[m])
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values("AUROC", ascending=False, kind="mergesort").reset_index(drop=True)


def _cell(row: pd.Series, metric: str) -> str:
    mean, std = 100 * row[metric], 100 * row[f"{metric}_std"]
    spread = "" if np.isnan(std) else f" ± {std:.2f}"
    return f"{mean:.2f}{spread} [{100 * row[f'{metric}_lo']:.2f}, {100 * row[f'{metric}_hi']:.2f}]"


def markdown(frame: pd.DataFrame, benchmark: str, ood_sets: list[str], replicates: int, scale: str) -> str:
    seeds = sorted(set(frame["seeds"])) if len(frame) else [0]
    lines = [
        f"**{benchmark} ({scale} scale): every training method × score, ranked by AUROC. Mean over the "
        f"OOD sets ({', '.join(ood_sets)}), in %; ± std over seeds ({'/'.join(map(str, seeds))} per "
        f"row; none with one seed) and [95 % stratified-bootstrap interval, {replicates} replicates]. "
        "FPR@95: % of OOD accepted when 95 % of ID is kept (lower is better).**",
        "",
        "| Rank | Run | Paper | Score | AUROC ↑ | FPR@95 ↓ |",
        "|---|---|---|---|---|---|",
    ]
    for i, row in frame.iterrows():
        lines.append(
            f"| {i + 1} | {row['run']} | {row['paper']} | {row['score']} | {_cell(row, 'AUROC')} | "
            f"{_cell(row, 'FPR@95')} |"
        )
    return "\n".join(lines) + "\n"


def latex(frame: pd.DataFrame, benchmark: str) -> str:
    """The ranked table as a bare booktabs tabular (no float: the paper places it), cells as in
    :func:`markdown`, a comment line naming the benchmark."""
    from oodflow.report.latex import booktabs

    rows = [
        [i + 1, row["run"], row["paper"], row["score"], *(_cell(row, m) for m in METRICS)]
        for i, row in frame.iterrows()
    ]
    header = ["Rank", "Run", "Paper", "Score", "AUROC ↑", "FPR@95 ↓"]
    return booktabs(header, rows, "rlllll", comment=f"{benchmark}: cross-paper table (oodflow)")


def ranking_figure(frame: pd.DataFrame, out: str, benchmark: str, dpi: int = 120) -> None:
    """Horizontal bars of mean AUROC with the bootstrap interval, one colour per paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oodflow.report.figures import _save

    ranked = frame.iloc[::-1]
    papers = list(dict.fromkeys(frame["paper"]))
    colours = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(papers)}
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.18 * len(frame)))
    y = np.arange(len(ranked))
    ax.barh(y, ranked["AUROC"] * 100, color=[colours[p] for p in ranked["paper"]])
    # the interval as drawn from its bounds: a percentile bootstrap interval need not contain the
    # point estimate (few OOD sets, ties), so it is no symmetric or even non-negative error bar
    lo, hi = ranked["AUROC_lo"].to_numpy() * 100, ranked["AUROC_hi"].to_numpy() * 100
    ax.hlines(y, lo, hi, colors="black", linewidth=0.8)
    ax.plot(np.r_[lo, hi], np.r_[y, y], "|", color="black", markersize=4)
    ax.set_yticks(y, [f"{r} · {s}" for r, s in zip(ranked["run"], ranked["score"], strict=True)], fontsize=7)
    low = max(0.0, float(frame["AUROC_lo"].min()) * 100 - 5) if len(frame) else 0.0
    ax.set_xlim(low, 100)
    ax.set_xlabel("AUROC (%), mean over OOD sets, 95 % bootstrap interval")
    ax.set_title(f"{benchmark}: training method × score, ranked")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in papers]
    ax.legend(handles, papers, fontsize=7, loc="lower right")
    fig.tight_layout()
    _save(fig, out, dpi)

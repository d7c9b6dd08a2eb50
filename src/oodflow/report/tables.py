"""Long-form metrics and paper-style tables (Markdown and LaTeX).

The long form has one row per (run, score, OOD set, metric) plus one ``accuracy`` row per run; every
other table is derived from it. Metrics are fractions in the CSV and percentages in the tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oodflow.io import load_npz
from oodflow.metrics import accuracy, ood_metrics, ood_metrics_over_draws
from oodflow.report.latex import Raw, booktabs

METRICS = ("AUROC", "AUPR-In", "AUPR-Out", "FPR@95")
COLUMNS = ("benchmark", "run", "model", "method", "score", "ood_set", "metric", "value")
LOWER_IS_BETTER = {"FPR@95"}
#: Methods whose runs the table caption describes (checkpoint selection, accuracy).
PROTOTYPE_CAPTION_METHODS = ("palm", "adapt")


def long_form_metrics(
    config: Mapping[str, Any],
    score_files: Mapping[tuple[str, str], str],
    test_caches: Mapping[str, str],
    subsets: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Evaluate every score file against each OOD set; rows in config order (stable bytes).

    With ``subsets`` (OOD set -> ``(draws, size)`` indices), an OOD set's metrics are the mean over
    its drawn subsets instead of one value on the whole set.
    """
    bench = config["benchmark"]["name"]
    rows = []
    for run, spec in config["runs"].items():
        base = {"benchmark": bench, "run": run, "model": spec["model"], "method": spec["method"]}
        cache = load_npz(test_caches[run], required={"logits": 2, "labels": 1})
        acc = accuracy(cache["logits"], cache["labels"])
        rows.append({**base, "score": "-", "ood_set": "id", "metric": "accuracy", "value": acc})
        for score in run_scores(config, run):
            scores = load_npz(score_files[(run, score)])
            for ood in config["benchmark"]["ood_sets"]:
                if subsets and ood in subsets:
                    values = ood_metrics_over_draws(scores["id"], scores[ood], subsets[ood])
                else:
                    values = ood_metrics(scores["id"], scores[ood])
                rows += [
                    {**base, "score": score, "ood_set": ood, "metric": m, "value": values[m]} for m in METRICS
                ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def run_scores(config: Mapping[str, Any], run: str) -> list[str]:
    """The scores run ``run`` is evaluated with: its ``scores`` list, or all of the config's."""
    return list(config["runs"][run].get("scores") or config["scores"])


def summary_json(frame: pd.DataFrame) -> dict[str, Any]:
    """Nested ``{run: {accuracy, score: {metric: mean over OOD sets}}}`` for ``dvc metrics``."""
    out: dict[str, Any] = {}
    for run, group in frame.groupby("run", sort=False):
        entry: dict[str, Any] = {"accuracy": round(float(group[group.metric == "accuracy"].value.iloc[0]), 6)}
        ood = group[group.metric != "accuracy"]
        for score, sgroup in ood.groupby("score", sort=False):
            means = sgroup.groupby("metric", sort=False).value.mean()
            entry[score] = {m: round(float(means[m]), 6) for m in METRICS}
        out[run] = entry
    return out


def _matrix(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(run, score) x OOD-set matrix of ``metric`` with an ``Average`` column, in percent."""
    sub = frame[frame.metric == metric]
    order_sets = list(dict.fromkeys(sub.ood_set))
    order_rows = list(dict.fromkeys(zip(sub.run, sub.score)))
    mat = sub.pivot_table(index=["run", "score"], columns="ood_set", values="value", sort=False)
    mat = mat.reindex(index=pd.MultiIndex.from_tuples(order_rows), columns=order_sets) * 100.0
    mat["Average"] = mat.mean(axis=1)
    return mat


def _best(mat: pd.DataFrame, metric: str) -> pd.DataFrame:
    rounded = mat.round(2)
    target = rounded.min() if metric in LOWER_IS_BETTER else rounded.max()
    return rounded.eq(target, axis=1)


def paper_tables(metrics_csv: str, pair: tuple[str, str] = ("FPR@95", "AUROC")) -> tuple[str, str]:
    """Markdown and LaTeX tables: rows (run, score), OOD sets as columns, cells ``FPR@95 / AUROC``.

    The best value of each column (lowest FPR@95, highest AUROC) is in bold.
    """
    frame = pd.read_csv(metrics_csv)
    first, second = (_matrix(frame, m) for m in pair)
    best1, best2 = _best(first, pair[0]), _best(second, pair[1])
    acc = frame[frame.metric == "accuracy"].set_index("run").value * 100.0
    bench = frame.benchmark.iloc[0]
    cols = list(first.columns)

    def cell(r, c, bold) -> str:
        a, b = f"{first.at[r, c]:.2f}", f"{second.at[r, c]:.2f}"
        return f"{bold(a) if best1.at[r, c] else a} / {bold(b) if best2.at[r, c] else b}"

    caption = (
        f"{bench}: {pair[0]} (lower is better; % of OOD accepted when 95% of ID is kept) / "
        f"{pair[1]} (higher is better), in %. Scores are 'higher = more ID'. Best per column in bold."
    )
    if frame.method.isin(PROTOTYPE_CAPTION_METHODS).any():
        caption += (
            " PALM/ADAPT runs: the weights of the epoch with the lowest mean training loss (as the"
            " reference selects them), scored on L2-normalised encoder features; their ID acc. is the"
            " nearest-prototype classifier's."
        )
    md = [f"**{caption}**", "", "| Run | Score | ID acc. | " + " | ".join(cols) + " |"]
    md.append("|" + "---|" * (3 + len(cols)))
    for r in first.index:
        md.append(
            f"| {r[0]} | {r[1]} | {acc[r[0]]:.2f} | "
            + " | ".join(cell(r, c, lambda v: f"**{v}**") for c in cols)
            + " |"
        )
    md_text = "\n".join(md) + "\n"

    rows = [
        [r[0], r[1], f"{acc[r[0]]:.2f}", *(Raw(cell(r, c, lambda v: f"\\textbf{{{v}}}")) for c in cols)]
        for r in first.index
    ]
    label = f"tab:{bench}-{pair[0]}-{pair[1]}".replace("@", "")
    tex = booktabs(["Run", "Score", "ID acc.", *cols], rows, "ll r " + "c" * len(cols), caption, label)
    return md_text, tex

"""Multi-label tables and the tail-ID figure.

``metrics.csv`` has the spine's long format (``oodflow.report.tables.COLUMNS``): per run one ID row
``score "-", ood_set "id", metric "mAP"`` and per (score, OOD set) AUROC, AUPR-In, AUPR-Out and
FPR@95; ``method`` is the run's objective. The tail-ID CSV adds ``j`` (head labels excluded) and
``n_id`` (ID test images left), one row per (run, score, j, OOD set, metric).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oodflow.io import load_npz
from oodflow.metrics import ood_metrics
from oodflow.report.latex import booktabs
from oodflow.report.tables import COLUMNS, METRICS

TAIL_COLUMNS = ("benchmark", "run", "method", "score", "j", "n_id", "ood_set", "metric", "value")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def metrics_frame(config: Mapping[str, Any], score_files, test_caches) -> pd.DataFrame:
    from oodflow.multilabel.metrics import mean_average_precision

    ml = config["multilabel"]
    bench, oods = ml["benchmark"]["name"], ml["benchmark"]["ood_sets"]
    rows = []
    for run, spec in ml["runs"].items():
        base = {"benchmark": bench, "run": run, "model": spec["model"], "method": spec["objective"]}
        cache = load_npz(test_caches[run], required={"logits": 2, "targets": 2})
        m = mean_average_precision(cache["targets"], _sigmoid(cache["logits"]))
        rows.append({**base, "score": "-", "ood_set": "id", "metric": "mAP", "value": m})
        for score in ml["scores"]:
            s = load_npz(score_files[(run, score)])
            for ood in oods:
                values = ood_metrics(s["id"], s[ood])
                rows += [
                    {**base, "score": score, "ood_set": ood, "metric": k, "value": values[k]} for k in METRICS
                ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def tail_frame(config: Mapping[str, Any], score_files, test_caches, train_y: np.ndarray) -> pd.DataFrame:
    from oodflow.multilabel.metrics import head_labels, tail_rows

    ml = config["multilabel"]
    bench, oods, tail = ml["benchmark"]["name"], ml["benchmark"]["ood_sets"], ml["tail"]
    rank_by = tail.get("rank_by", "test")
    if rank_by not in ("test", "train"):
        raise ValueError(f"multilabel.tail.rank_by: unknown value '{rank_by}'; valid: test, train")
    rows = []
    for run, spec in ml["runs"].items():
        y_test = load_npz(test_caches[run], required={"targets": 2})["targets"]
        order = head_labels(y_test if rank_by == "test" else train_y)  # EDGE: the evaluated set's counts
        for score in tail["scores"]:
            s = load_npz(score_files[(run, score)])
            found = tail_rows(s["id"], {o: s[o] for o in oods}, y_test, order, tail["j"], tail["min_images"])
            base = {"benchmark": bench, "run": run, "method": spec["objective"], "score": score}
            rows += [{**base, **r} for r in found]
    return pd.DataFrame(rows, columns=list(TAIL_COLUMNS))


def summary(frame: pd.DataFrame, tail: pd.DataFrame) -> dict[str, Any]:
    """``{run: {mAP, score: {metric: mean over OOD sets}, tail: {score: {j: AUROC mean}}}}``."""
    out: dict[str, Any] = {}
    for run, group in frame.groupby("run", sort=False):
        entry: dict[str, Any] = {"mAP": round(float(group[group.metric == "mAP"].value.iloc[0]), 6)}
        for score, sg in group[group.metric != "mAP"].groupby("score", sort=False):
            means = sg.groupby("metric", sort=False).value.mean()
            entry[score] = {m: round(float(means[m]), 6) for m in METRICS}
        t = tail[(tail.run == run) & (tail.metric == "AUROC")]
        entry["tail_auroc"] = {
            score: {str(j): round(float(g.value.mean()), 6) for j, g in sg.groupby("j")}
            for score, sg in t.groupby("score", sort=False)
        }
        out[run] = entry
    return out


def main_tables(frame: pd.DataFrame) -> tuple[str, str]:
    """(run, score) rows with mAP, FPR@95 / AUROC per OOD set and their mean, in percent."""
    bench = frame.benchmark.iloc[0]
    maps = frame[frame.metric == "mAP"].set_index("run").value * 100.0
    ood = frame[frame.metric.isin(["FPR@95", "AUROC"])]
    sets = list(dict.fromkeys(ood.ood_set))
    keys = list(dict.fromkeys(zip(ood.run, ood.score)))
    cell = {(r.run, r.score, r.ood_set, r.metric): r.value * 100.0 for r in ood.itertuples()}
    cols = [*sets, "Average"]

    def value(run, score, col, metric):
        if col == "Average":
            return float(np.mean([cell[(run, score, s, metric)] for s in sets]))
        return cell[(run, score, col, metric)]

    caption = (
        f"{bench} (multi-label): FPR@95 (lower is better) / AUROC (higher is better) in %, "
        "scores 'higher = more ID'; mAP of the ID test set in %."
    )
    md = [
        f"**{caption}**",
        "",
        "| Run | Score | mAP | " + " | ".join(cols) + " |",
        "|" + "---|" * (3 + len(cols)),
    ]
    rows = []
    for run, score in keys:
        cells = [f"{value(run, score, c, 'FPR@95'):.2f} / {value(run, score, c, 'AUROC'):.2f}" for c in cols]
        md.append(f"| {run} | {score} | {maps[run]:.2f} | " + " | ".join(cells) + " |")
        rows.append([run, score, f"{maps[run]:.2f}", *cells])
    tex = booktabs(["Run", "Score", "mAP", *cols], rows, "ll r " + "c" * len(cols), caption)
    return "\n".join(md) + "\n", tex


def _tail_means(tail: pd.DataFrame) -> pd.DataFrame:
    """Mean over OOD sets per (run, score, j, metric), with n_id."""
    return (
        tail.groupby(["run", "score", "j", "metric"], sort=False)
        .agg(value=("value", "mean"), n_id=("n_id", "first"))
        .reset_index()
    )


def tail_table(tail: pd.DataFrame) -> str:
    """AUROC / FPR@95 (mean over OOD sets, %) per (run, score) against j, with the ID images left."""
    if tail.empty:
        return "**Tail-ID evaluation: no j left enough ID test images.**\n"
    means = _tail_means(tail)
    js = sorted(means.j.unique())
    n_id = means.drop_duplicates("j").set_index("j").n_id
    lines = [
        f"**{tail.benchmark.iloc[0]}: tail-ID OOD detection. ID test images carrying none of the j most "
        "frequent labels (multilabel.tail.rank_by: counted in the evaluated test set by default, as EDGE) "
        "vs each OOD set; AUROC / FPR@95 in %, mean over OOD sets.**",
        "",
        "| Run | Score | " + " | ".join(f"j={j} (n={n_id[j]})" for j in js) + " |",
        "|" + "---|" * (2 + len(js)),
    ]
    cell = {(r.run, r.score, r.j, r.metric): r.value * 100 for r in means.itertuples()}
    for run, score in dict.fromkeys(zip(means.run, means.score)):
        cells = [f"{cell[(run, score, j, 'AUROC')]:.2f} / {cell[(run, score, j, 'FPR@95')]:.2f}" for j in js]
        lines.append(f"| {run} | {score} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tail_figure(tail: pd.DataFrame, out: str, dpi: int = 120) -> None:
    """AUROC and FPR@95 (mean over OOD sets) against j, one line per run, one row per score."""
    from oodflow.report.figures import _save, plt

    means = _tail_means(tail)
    scores = list(dict.fromkeys(means.score)) or ["-"]
    fig, axes = plt.subplots(len(scores), 2, figsize=(9, 3.2 * len(scores)), squeeze=False)
    for row, score in enumerate(scores):
        sub = means[means.score == score]
        for col, metric in enumerate(("AUROC", "FPR@95")):
            ax = axes[row][col]
            for run in dict.fromkeys(sub.run):
                line = sub[(sub.run == run) & (sub.metric == metric)].sort_values("j")
                ax.plot(line.j, line.value * 100, marker="o", label=run)
            ax.set_xlabel("j (head labels excluded from the ID test set)")
            ax.set_ylabel(f"{metric} (%)")
            ax.set_title(f"{score}: {metric} vs j")
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out, dpi)

"""Two-run comparison tables: a baseline vs a candidate (e.g. its energy-fine-tuned model) per OOD set.

The layout of papers that fine-tune a baseline (the Food-101 project's README): for each compared
score and OOD set, the metric of both runs and the improvement in points, signed so that a positive
value means the candidate is better,

.. math::
    \\Delta = m_{base} - m_{cand} \\ (\\text{FPR@95, lower is better}), \\qquad
    \\Delta = m_{cand} - m_{base} \\ (\\text{AUROC, AUPR, accuracy}),

then the mean over each OOD group (near/far, from the benchmark) and over all sets, and a first row
with the ID top-1 accuracy of both runs. With a reference file (:mod:`oodflow.report.references`),
the reported numbers and their improvement stand beside ours; a mean is reported only where every
set of it has a reported value. Everything comes from the long-form ``tables/metrics.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from oodflow.report.latex import MIDRULE, booktabs
from oodflow.report.tables import LOWER_IS_BETTER

#: Columns of the comparison CSV (values in percent; NaN where there is nothing to show).
COLUMNS = (
    "score",
    "ood_set",
    "group",
    "baseline",
    "candidate",
    "improvement",
    "reported_baseline",
    "reported_candidate",
    "reported_improvement",
)
ACCURACY_ROW = "ID accuracy"


def improvement(baseline: float, candidate: float, metric: str) -> float:
    """Points gained by the candidate: positive = better (lower FPR@95, higher anything else)."""
    return baseline - candidate if metric in LOWER_IS_BETTER else candidate - baseline


def _value(frame: pd.DataFrame, run: str, score: str, ood: str, metric: str) -> float:
    hit = frame[
        (frame.run == run) & (frame.score == score) & (frame.ood_set == ood) & (frame.metric == metric)
    ]
    if len(hit) != 1:
        raise ValueError(
            f"metrics table has {len(hit)} rows for run={run} score={score} ood_set={ood} {metric}"
        )
    return float(hit.value.iloc[0]) * 100.0


def _row(score, ood, group, base, cand, metric, ref_base=np.nan, ref_cand=np.nan) -> dict[str, Any]:
    return {
        "score": score,
        "ood_set": ood,
        "group": group,
        "baseline": base,
        "candidate": cand,
        "improvement": improvement(base, cand, metric),
        "reported_baseline": ref_base,
        "reported_candidate": ref_cand,
        "reported_improvement": improvement(ref_base, ref_cand, metric),
    }


def comparison_frame(
    frame: pd.DataFrame,
    spec: Mapping[str, Any],
    groups: Mapping[str, str],
    reference: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The comparison as rows of :data:`COLUMNS` (percent).

    Args:
        frame: the long-form metrics (``tables/metrics.csv``).
        spec: one entry of ``report.comparisons`` (name, baseline, candidate, scores, metric).
        groups: OOD set -> group (``near`` / ``far``), in display order; sets absent from the
            metrics are skipped.
        reference: a parsed reference file, or None.
    """
    base, cand, metric = spec["baseline"], spec["candidate"], spec.get("metric", "FPR@95")
    for run in (base, cand):
        if run not in set(frame.run):
            raise ValueError(
                f"metrics table has no run '{run}' (runs: {', '.join(dict.fromkeys(frame.run))})"
            )
    ref = reference or {"accuracy": {}, "metrics": {}}
    acc = frame[frame.metric == "accuracy"].set_index("run").value * 100.0
    ref_acc = ref["accuracy"]
    rows = [
        _row(
            "-",
            ACCURACY_ROW,
            "",
            acc[base],
            acc[cand],
            "accuracy",
            ref_acc.get("baseline", np.nan),
            ref_acc.get("candidate", np.nan),
        )
    ]
    present = set(frame[frame.metric == metric].ood_set)
    sets = [s for s in groups if s in present]
    for score in spec["scores"]:
        reported = ref["metrics"].get(metric, {}).get(score, {})
        block = []
        for ood in sets:
            block.append(
                _row(
                    score,
                    ood,
                    groups[ood],
                    _value(frame, base, score, ood, metric),
                    _value(frame, cand, score, ood, metric),
                    metric,
                    reported.get("baseline", {}).get(ood, np.nan),
                    reported.get("candidate", {}).get(ood, np.nan),
                )
            )
        named = [g for g in dict.fromkeys(groups[s] for s in sets) if g]
        means = [(f"{g}-OOD mean", g, [r for r in block if r["group"] == g]) for g in named]
        means = [m for m in means if len(m[2]) < len(block)]  # a group of every set: the mean says it
        means.append(("mean", "", list(block)))  # a copy: the group means are appended to block
        for label, group, members in means:

            def avg(key: str, members=members) -> float:
                values = [r[key] for r in members]
                return float(np.mean(values)) if not np.isnan(values).any() else np.nan

            block.append(
                _row(
                    score,
                    label,
                    group,
                    avg("baseline"),
                    avg("candidate"),
                    metric,
                    avg("reported_baseline"),
                    avg("reported_candidate"),
                )
            )
        rows += block
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _fmt(value: float, signed: bool = False) -> str:
    if np.isnan(value):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def render(
    table: pd.DataFrame,
    spec: Mapping[str, Any],
    benchmark: str,
    reference: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """Markdown and LaTeX of a :func:`comparison_frame`; reported columns only with a reference."""
    base, cand, metric = spec["baseline"], spec["candidate"], spec.get("metric", "FPR@95")
    lower = metric in LOWER_IS_BETTER
    sign = f"{base} − {cand}" if lower else f"{cand} − {base}"
    caption = (
        f"{benchmark}: {metric} in % ({'lower' if lower else 'higher'} is better) of {base} vs {cand} "
        f"per OOD set and score, scores 'higher = more ID'. Δ = improvement in points ({sign}; for ID "
        f"top-1 accuracy {cand} − {base}): positive = {cand} is better."
    )
    if reference:
        caption += f" Reported: {reference['source']}."
        if reference.get("notes"):
            caption += f" {reference['notes']}"
    header = ["Score", "OOD set", "Group", base, cand, "Δ"]
    if reference:
        header += [f"reported {base}", f"reported {cand}", "reported Δ"]

    def cells(r) -> list[str]:
        out = [
            r.score,
            r.ood_set,
            r.group,
            _fmt(r.baseline),
            _fmt(r.candidate),
            _fmt(r.improvement, signed=True),
        ]
        if reference:
            out += [_fmt(r.reported_baseline), _fmt(r.reported_candidate), _fmt(r.reported_improvement, True)]
        return out

    rows = list(table.itertuples(index=False))
    md = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(cells(r)) + " |" for r in rows]

    body: list[list[str] | str] = []
    for previous, r in zip([None, *rows], rows):
        if previous is not None and r.score != previous.score:
            body.append(MIDRULE)
        body.append(cells(r))
    label = f"tab:{benchmark}-{spec['name']}".replace("@", "")
    tex = booktabs(header, body, "lll " + "r" * (len(header) - 3), caption, label)
    return "\n".join(md) + "\n", tex

"""OSR tables and figure: the paper's layout, reported numbers beside ours, a long-form metrics.csv.

* ``<metric>.{md,tex,csv}`` for AUROC, OSCR, F1 (and closed-set accuracy): one row per (split family,
  method), datasets as columns in the paper's order (MNIST, SVHN, CIFAR10, CIFAR+10, CIFAR+50,
  TinyImageNet; then the embedded MNIST-5k), cells ``mean ± std`` over the trials in % (the number of
  trials in brackets when it is not 5), each method under its own protocol score
  (:data:`oodflow.osr.PROTOCOL_SCORES`: MSP, or ARPL's max reciprocal-point logit, whose methods get a
  second row ``<method> [msp]`` in the AUROC and OSCR tables). Rows ``<method> (reported)`` carry the
  paper's numbers from the reference sidecar (format: :func:`load_reference`), which are under each
  paper's own protocol.
* ``metrics.csv``: the spine's long format (``benchmark, run, model, method, score, ood_set, metric,
  value``; fractions; both protocol scores ``msp`` and ``maxlogit``) with
  ``benchmark = osr-<family>-<dataset>``, ``run = <method>-trial<t>``,
  ``ood_set = unknown`` (``id`` for accuracy), so the scorecard and cross-paper tables can join it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from oodflow import yamlfile
from oodflow.io import FormatError, write_text
from oodflow.osr.splits import DATASETS, FAMILIES
from oodflow.report.latex import booktabs

#: Table name -> metric (in eval.json's block of the method's own protocol score).
TABLES = {"auroc": "AUROC", "oscr": "OSCR", "f1": "F1", "accuracy": "accuracy"}
#: The protocol-score blocks of an eval record (oodflow.osr.evaluate), and the metrics that depend on
#: the score (accuracy does not; F1 is the MSP threshold's).
PROTOCOL_BLOCKS = ("msp", "maxlogit")
SCORED_METRICS = ("AUROC", "OSCR")
COLUMNS = ("benchmark", "run", "model", "method", "score", "ood_set", "metric", "value")
MODEL = "classifier32"


def load_reference(path: str | Path) -> dict[str, Any]:
    """Read a sidecar of reported numbers (percent)::

    source: where they come from
    notes: free text (optional)
    metrics:
      AUROC:                                    # AUROC | OSCR | F1 | accuracy
        dias: {cifar10: 85.0, svhn: 94.7}       # method -> OSR dataset -> value in %
    """
    path = Path(path)
    try:
        raw = yamlfile.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise FormatError(f"{path}: not a readable YAML reference ({err})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("source"), str):
        raise FormatError(f"{path}: a reference needs 'source' (text) and 'metrics'")
    unknown = set(raw) - {"source", "notes", "metrics"}
    if unknown:
        raise FormatError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid: source, notes, metrics"
        )
    metrics = raw.get("metrics") or {}
    for metric, by_method in metrics.items():
        if metric not in TABLES.values():
            raise FormatError(
                f"{path}: metrics.{metric}: unknown metric; valid: {', '.join(TABLES.values())}"
            )
        for method, by_ds in (by_method or {}).items():
            for ds, value in (by_ds or {}).items():
                at = f"{path}: metrics.{metric}.{method}.{ds}"
                if ds not in DATASETS:
                    raise FormatError(f"{at}: unknown OSR dataset; valid: {', '.join(DATASETS)}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                    raise FormatError(f"{at}: expected a percentage in [0, 100], got {value!r}")
    return {"source": raw["source"].strip(), "notes": str(raw.get("notes", "")).strip(), "metrics": metrics}


def long_form(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``metrics.csv`` (see the module docstring), sorted."""
    rows = []
    for r in records:
        base = {"benchmark": f"osr-{r['family']}-{r['dataset']}", "run": f"{r['method']}-trial{r['trial']}",
                "model": MODEL, "method": r["method"]}  # fmt: skip
        rows.append(
            {**base, "score": "-", "ood_set": "id", "metric": "accuracy", "value": r["msp"]["accuracy"]}
        )
        for score in PROTOCOL_BLOCKS:
            for metric, value in (r.get(score) or {}).items():
                if metric != "accuracy":
                    rows.append(
                        {**base, "score": score, "ood_set": "unknown", "metric": metric, "value": value}
                    )
        for score, metrics in r["posthoc"].items():
            for metric, value in metrics.items():
                rows.append({**base, "score": score, "ood_set": "unknown", "metric": metric, "value": value})
    return sorted(rows, key=lambda row: tuple(str(row[c]) for c in COLUMNS[:-1]))


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.6f}" if isinstance(v, float) else str(v)

    return "\n".join([",".join(columns), *(",".join(fmt(row[c]) for c in columns) for row in rows)]) + "\n"


def protocol(record: Mapping[str, Any]) -> str:
    """The record's own protocol score (``msp`` for records written before there were two)."""
    return record.get("protocol", "msp")


def value(record: Mapping[str, Any], metric: str, score: str | None = None) -> float:
    """``metric`` of an eval record under protocol score ``score`` (None: the method's own); the F1 and
    accuracy exist under ``msp`` only (F1 is defined by an MSP threshold)."""
    block = record.get(score or protocol(record)) or {}
    return float(block[metric] if metric in block else record["msp"][metric])


def summary(
    records: Sequence[Mapping[str, Any]], metric: str, score: str | None = None
) -> dict[tuple[str, str, str], list[float]]:
    """``(family, method, dataset) -> [value in % per trial]`` (trials in ascending order) under
    protocol score ``score`` (None: each method's own, :data:`oodflow.osr.PROTOCOL_SCORES`)."""
    out: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in records:
        if score is not None and score not in r:
            continue
        out.setdefault((r["family"], r["method"], r["dataset"]), []).append(
            (r["trial"], 100.0 * value(r, metric, score))
        )
    return {k: [v for _, v in sorted(vals)] for k, vals in out.items()}


def _cell(values: list[float] | None) -> str:
    if not values:
        return "-"
    if len(values) == 1:  # one trial: no spread to report
        return f"{values[0]:.1f} (1)"
    text = f"{np.mean(values):.1f} ± {np.std(values, ddof=0):.1f}"
    return text if len(values) == 5 else f"{text} ({len(values)})"


def table(
    records: Sequence[Mapping[str, Any]], metric: str, reference: Mapping[str, Any] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one metric's table (strings)."""
    stats = summary(records, metric)
    datasets = [d for d in DATASETS if any(k[2] == d for k in stats)]
    families = [f for f in FAMILIES if any(k[0] == f for k in stats)]
    methods = list(dict.fromkeys(r["method"] for r in records))
    header = ["Split", "Method", *(DATASETS[d].title for d in datasets)]
    rows = [
        [f, m, *(_cell(stats.get((f, m, d))) for d in datasets)]
        for f in families
        for m in methods
        if any((f, m, d) in stats for d in datasets)
    ]
    # "Report both": methods whose own protocol is not the MSP get a second row with the MSP
    other = [m for m in methods if any(r["method"] == m and protocol(r) != "msp" for r in records)]
    if other and metric in SCORED_METRICS:
        msp_stats = summary([r for r in records if r["method"] in other], metric, "msp")
        rows += [
            [f, f"{m} [msp]", *(_cell(msp_stats.get((f, m, d))) for d in datasets)]
            for f in families
            for m in other
            if any((f, m, d) in msp_stats for d in datasets)
        ]
    for method, by_ds in ((reference or {}).get("metrics", {}).get(metric) or {}).items():
        cells = [_fmt_ref((by_ds or {}).get(d)) for d in datasets]
        if any(c != "-" for c in cells):  # only rows with a number for a dataset in the table
            rows.append(["paper", f"{method} (reported)", *cells])
    return header, rows


def _fmt_ref(value: float | None) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _markdown(caption: str, header: list[str], rows: list[list[str]], notes: str = "") -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def write_tables(
    records: Sequence[Mapping[str, Any]],
    reference: Mapping[str, Any] | None,
    out_dir: str | Path,
    name: str = "osr",
) -> None:
    """Every table of :data:`TABLES` (md, tex, csv) and ``metrics.csv`` into ``out_dir``."""
    out_dir = Path(out_dir)
    for stem, metric in TABLES.items():
        header, rows = table(records, metric, reference)
        caption = (
            f"Open-set recognition ({name}): {metric} in %, mean ± std over trials (count in brackets when "
            "not 5), known positive, each method under its own protocol score (MSP; ARPL and ARPL+CS: the "
            "max reciprocal-point logit, their rows '[msp]' the MSP). Reported rows: "
            + (reference["source"] if reference else "none")
        )
        notes = reference.get("notes", "") if reference else ""
        write_text(out_dir / f"{stem}.md", _markdown(caption, header, rows, notes))
        write_text(
            out_dir / f"{stem}.tex",
            booktabs(header, rows, "ll" + "c" * (len(header) - 2), caption, f"tab:{name}-{stem}"),
        )
        write_text(out_dir / f"{stem}.csv", _csv([dict(zip(header, row)) for row in rows], header))
    write_text(out_dir / "metrics.csv", _csv(long_form(records), COLUMNS))


def oscr_figure(
    records: Sequence[Mapping[str, Any]], curves: Sequence[Mapping[str, np.ndarray]], out: str, dpi: int = 120
) -> None:
    """One panel per (family, dataset): the OSCR curve (CCR vs FPR) of every method and trial."""
    from oodflow.report.figures import _save, plt

    panels = sorted({(r["family"], r["dataset"]) for r in records},
                    key=lambda p: (FAMILIES.index(p[0]), list(DATASETS).index(p[1])))  # fmt: skip
    methods = list(dict.fromkeys(r["method"] for r in records))
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (family, ds) in zip(axes.flat, panels):
        labelled = set()
        for r, c in sorted(zip(records, curves), key=lambda rc: (rc[0]["method"], rc[0]["trial"])):
            if (r["family"], r["dataset"]) != (family, ds):
                continue
            label = None if r["method"] in labelled else f"{r['method']}"
            labelled.add(r["method"])
            ax.plot(c["fpr"], c["ccr"], color=colours[r["method"]], lw=1.0, alpha=0.8, label=label)
        ax.set(xlabel="FPR (unknown accepted)", ylabel="CCR (known correct)", xlim=(0, 1), ylim=(0, 1),
               title=f"{DATASETS[ds].title}, {family} splits")  # fmt: skip
        ax.legend(loc="lower right", fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, out, dpi)

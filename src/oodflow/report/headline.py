"""Headline metrics: a few numbers per run for ``dvc metrics show`` and ``dvc exp show``.

The long table (``tables/metrics.csv``: every run x score x OOD set x metric) is what the paper tables
are built from; a person comparing two commits or two experiments wants fewer numbers. Each results
folder gets ``headline/<key>.json`` per run::

    {"score": "energy", "accuracy": 0.98, "AUROC": 0.91, "FPR@95": 0.35}

* ``accuracy`` (single-label and open-set runs) or ``mAP`` (multi-label runs): the ID metric, from the
  run's ``id`` row;
* ``AUROC`` and ``FPR@95``: the means over the OOD sets (open set: over the trials) of the run's
  *primary* score, named by ``score``.

The primary score of a run is the one its method is evaluated with in its paper, where that is a
different score than the run's first: energy fine-tuning (Liu et al. 2020, wetliu/energy_ood) is
scored with the energy score; an open-set method with its protocol score
(:data:`oodflow.osr.PROTOCOL_SCORES`: ARPL's max reciprocal-point logit, else MSP). Every other run
uses the first of its scores in config order (``runs.<run>.scores``, else ``scores``; multi-label:
``multilabel.scores``), so reordering the config's score list changes the headline, nothing else.

Keys are the run names; open-set keys are ``<family>-<dataset>-<method>`` (mean over its trials).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from oodflow.io import FormatError, write_json

#: Training method -> the score its paper evaluates it with (when not the run's first score).
METHOD_SCORES = {"energy_ft": "energy"}
OOD_METRICS = ("AUROC", "FPR@95")
ID_METRICS = {"spine": "accuracy", "osr": "accuracy", "multilabel": "mAP"}
FOLDER = "headline"


def _spine_primary(config: Mapping[str, Any], run: str) -> str:
    spec = config["runs"][run]
    scores = list(spec.get("scores") or config["scores"])
    preferred = METHOD_SCORES.get(spec["method"])
    return preferred if preferred in scores else scores[0]


def primaries(config: Mapping[str, Any], part: str) -> dict[str, dict[str, str]]:
    """Headline key -> ``{"run" or "method" + "benchmark", "score"}`` of ``part`` of a validated config.

    ``part``: "spine", "osr" or "multilabel" (:data:`oodflow.provenance.PARTS`).
    """
    if part == "spine":
        return {run: {"run": run, "score": _spine_primary(config, run)} for run in config["runs"]}
    if part == "osr":
        from oodflow.osr import PROTOCOL_SCORES

        osr = config["osr"]
        return {
            f"{family}-{ds}-{method}": {
                "benchmark": f"osr-{family}-{ds}",
                "method": method,
                "score": PROTOCOL_SCORES.get(method, "msp"),
            }
            for family in osr["splits"]
            for ds in osr["datasets"]
            for method in osr["methods"]
        }
    if part == "multilabel":
        ml = config["multilabel"]
        first = next(iter(ml["scores"]))
        return {run: {"run": run, "score": first} for run in ml["runs"]}
    raise ValueError(f"unknown part '{part}'; valid: spine, osr, multilabel")


def headline(frame: pd.DataFrame, part: str, keys: Mapping[str, Mapping[str, str]]) -> dict[str, dict]:
    """Key -> headline record from a long-form metrics table (``oodflow.report.tables.COLUMNS``).

    Raises:
        FormatError: if the table has no rows for a key's ID metric or its primary score.
    """
    id_metric = ID_METRICS[part]
    out: dict[str, dict] = {}
    for key, sel in keys.items():
        rows = frame
        for column in ("run", "benchmark", "method"):
            if column in sel:
                rows = rows[rows[column] == sel[column]]
        ident = rows[rows.metric == id_metric].value
        if ident.empty:
            raise FormatError(f"metrics table: no '{id_metric}' row for {key}")
        record: dict[str, Any] = {"score": sel["score"], id_metric: round(float(ident.mean()), 6)}
        scored = rows[rows.score == sel["score"]]
        for metric in OOD_METRICS:
            values = scored[scored.metric == metric].value
            if values.empty:
                raise FormatError(f"metrics table: no '{metric}' rows of score '{sel['score']}' for {key}")
            record[metric] = round(float(values.mean()), 6)
        out[key] = record
    return out


def paths(config: Mapping[str, Any], part: str, folder: str) -> list[str]:
    """The headline files of ``part``, ``results/<folder>/headline/<key>.json``, in key order."""
    return [f"results/{folder}/{FOLDER}/{key}.json" for key in primaries(config, part)]


def write(
    config: Mapping[str, Any], part: str, metrics_csv: str | Path, outputs: Sequence[str | Path]
) -> None:
    """Write the headline file of every key of ``part`` (``outputs`` in :func:`paths` order)."""
    keys = primaries(config, part)
    if len(outputs) != len(keys):
        raise ValueError(f"{len(outputs)} outputs for {len(keys)} headline keys of part {part}")
    records = headline(pd.read_csv(metrics_csv), part, keys)
    for out, key in zip(outputs, keys, strict=True):
        if Path(out).stem != key:
            raise ValueError(f"{out}: expected the headline file of '{key}'")
        write_json(out, records[key])

"""Reported numbers of a paper, kept beside ours: a small YAML sidecar per paper config.

A comparison of two runs (``report.comparisons`` in the config: a baseline and a candidate, e.g. the
energy-fine-tuned model) may name a reference file; its numbers are shown next to ours in the
comparison table. The file names *roles*, not runs, so it fits whatever the runs are called::

    source: Food-101 OOD project README (Tranzocchi & Corsi)   # where the numbers come from
    notes: free text, shown under the table (optional)
    accuracy: {baseline: 67.56, candidate: 76.00}              # ID top-1, in %
    metrics:
      FPR@95:                                                  # one of METRIC_NAMES
        energy:                                                # a score name
          baseline: {dtd: 25.32, flowers102: 50.97}            # OOD set -> value in %
          candidate: {dtd: 18.40, flowers102: 35.92}

Every number is a percentage in [0, 100]; OOD sets use the benchmark's names. A score or OOD set the
config does not evaluate is simply not shown. Importing this module is cheap (no pandas, no torch):
the config validation reads reference files before any job runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from oodflow import yamlfile
from oodflow.io import FormatError

#: Where relative reference paths start: the repository root (the folder holding ``config/``).
ROOT = Path(__file__).resolve().parents[3]
ROLES = ("baseline", "candidate")
#: The metrics of :mod:`oodflow.report.tables` (a test keeps the two lists equal).
METRIC_NAMES = ("AUROC", "AUPR-In", "AUPR-Out", "FPR@95")


def resolve(path: str | Path) -> Path:
    """A reference path as given (absolute) or relative to the repository root."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def rule_input(path: str | Path, cwd: str | Path | None = None) -> str:
    """A file as a Snakemake rule input: relative to the working directory ``cwd`` (default: the
    current one) when it lies inside it, absolute otherwise.

    The usual working directory is the checkout itself, so the reference files of ``config/`` are
    inputs like ``config/papers/references/scorecard.yaml`` and a moved checkout (results and all)
    reruns nothing because it moved. A file outside the working directory stays absolute: a path
    with ``..`` would change whenever either folder moves. Steps read such inputs as given, i.e.
    relative to the working directory, not re-resolved with :func:`resolve`.
    """
    path = Path(path).absolute()
    cwd = Path(cwd if cwd is not None else Path.cwd()).absolute()
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 100.0:
        raise FormatError(f"{where}: expected a percentage in [0, 100], got {value!r}")
    return float(value)


def _mapping(value: Any, where: str, keys: Iterable[str] | None = None, what: str = "key") -> dict:
    if not isinstance(value, Mapping):
        raise FormatError(f"{where}: expected a mapping, got {type(value).__name__}")
    if keys is not None:
        valid = list(keys)
        for key in value:
            if key not in valid:
                raise FormatError(f"{where}: unknown {what} '{key}'; valid: {', '.join(valid)}")
    return dict(value)


def parse_reference(raw: Any, ood_sets: Iterable[str], where: str = "reference") -> dict[str, Any]:
    """Validate the content of a reference file; returns ``{source, notes, accuracy, metrics}``.

    ``ood_sets`` are the OOD set names the benchmark offers; values are floats (percent).
    """
    ood_sets = list(ood_sets)
    top = _mapping(raw, where, ("source", "notes", "accuracy", "metrics"))
    if not isinstance(top.get("source"), str) or not top["source"].strip():
        raise FormatError(f"{where}: 'source' (where the numbers come from) is required")
    notes = top.get("notes", "")
    if not isinstance(notes, str):
        raise FormatError(f"{where}.notes: expected text")
    accuracy = {
        role: _number(v, f"{where}.accuracy.{role}")
        for role, v in _mapping(top.get("accuracy", {}), f"{where}.accuracy", ROLES, "role").items()
    }
    metrics: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for metric, by_score in _mapping(
        top.get("metrics", {}), f"{where}.metrics", METRIC_NAMES, "metric"
    ).items():
        for score, by_role in _mapping(by_score, f"{where}.metrics.{metric}").items():
            for role, by_set in _mapping(by_role, f"{where}.metrics.{metric}.{score}", ROLES, "role").items():
                at = f"{where}.metrics.{metric}.{score}.{role}"
                values = {
                    s: _number(v, f"{at}.{s}") for s, v in _mapping(by_set, at, ood_sets, "OOD set").items()
                }
                metrics.setdefault(metric, {}).setdefault(score, {})[role] = values
    return {"source": top["source"].strip(), "notes": notes.strip(), "accuracy": accuracy, "metrics": metrics}


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML of a registry file; a missing file or bad YAML is a FormatError naming it."""
    if not path.is_file():
        raise FormatError(f"{path}: {what} not found")
    try:
        return yamlfile.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise FormatError(f"{path}: not valid YAML ({err})") from None


def load_reference(path: str | Path, ood_sets: Iterable[str]) -> dict[str, Any]:
    """Read and validate a reference file (relative paths start at the repository root)."""
    path = resolve(path)
    return parse_reference(read_yaml(path, "reference file"), ood_sets, where=str(path))

"""What kind of run a results folder holds: ``results/<folder>/provenance.json``.

A results folder of the single-label runs (the spine), of the open-set section or of the multi-label
section records the scale it ran at, so that whoever reads its numbers later (the reproduction
scorecard, a person) knows whether they are paper numbers:

* ``smoke``: a toy-scale run of a paper config on format-exact fakes (``python -m oodflow.smoke``,
  config ``smoke: true``). Proves the paper's code path runs; its numbers mean nothing.
* ``embedded``: the embedded CPU benchmark (mnist5k and its sections): a trend on different data.
* ``paper``: a paper-scale dataset (the catalog's).

The record is ``{"part", "scale"}``: what determines how its numbers may be read, nothing that would
rerun it needlessly (such as the config file's name).
Importing this module is cheap (no torch); the rules call :func:`record` while the DAG is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oodflow.io import FormatError, read_json, write_json

SCALES = ("smoke", "embedded", "paper")
PARTS = ("spine", "osr", "multilabel")
FILENAME = "provenance.json"


def scale(config: Mapping[str, Any], part: str) -> str:
    """The scale of ``part`` ("spine", "osr" or "multilabel") of a validated config."""
    if part not in PARTS:
        raise ValueError(f"unknown part '{part}'; valid: {', '.join(PARTS)}")
    if config.get("smoke"):
        return "smoke"
    if part == "spine":
        from oodflow.data import BENCHMARKS

        embedded = BENCHMARKS.get(config["benchmark"]["name"]).source is None
    elif part == "osr":
        from oodflow.osr.splits import DATASETS

        specs = [DATASETS[name] for name in config["osr"]["datasets"]]
        embedded = all(s.known_source is None and s.unknown_source is None for s in specs)
    else:
        from oodflow.multilabel import ML_BENCHMARKS

        embedded = ML_BENCHMARKS.get(config["multilabel"]["benchmark"]["name"]).source is None
    return "embedded" if embedded else "paper"


def record(config: Mapping[str, Any], part: str) -> dict[str, Any]:
    """The provenance record of ``part`` of a config (what :func:`write` stores)."""
    return {"part": part, "scale": scale(config, part)}


def write(out: str | Path, rec: Mapping[str, Any]) -> None:
    write_json(out, dict(rec))


def read_scale(path: str | Path) -> str:
    """The scale a ``provenance.json`` records.

    Raises:
        FormatError: naming the file, if it is not a provenance record.
    """
    data = read_json(path)
    if not isinstance(data, dict) or data.get("scale") not in SCALES:
        raise FormatError(f"{path}: expected a provenance record with 'scale' one of {', '.join(SCALES)}")
    return data["scale"]

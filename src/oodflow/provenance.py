"""What kind of run a results folder holds: ``results/<folder>/provenance.json``.

A results folder of the single-label runs (the spine), of the open-set section or of the multi-label
section records the scale it ran at, so that whoever reads its numbers later (the reproduction
scorecard, a person) knows whether they are paper numbers:

* ``smoke``: a toy-scale run of a paper config on format-exact fakes (``python -m oodflow.smoke``,
  config ``smoke: true``). Proves the paper's code path runs; its numbers mean nothing.
* ``embedded``: the embedded CPU benchmark (mnist5k and its sections): a trend on different data.
* ``paper``: a paper's protocol on its paper-scale data: the part of the config equals that of the
  paper config in ``config/papers/`` that writes the same folder (every run, epoch, size, trial);
* ``custom``: paper-scale data with another protocol (fewer epochs or trials, smaller sets, changed
  arguments): real numbers, but not the paper's experiment.

The record is ``{"part", "scale", "protocol"}``, the protocol being what a reader needs to judge the
numbers (epochs per run, trials, set sizes); nothing that would rerun it needlessly (such as the
config file's name).
Importing this module is cheap (no torch); the rules call :func:`record` while the DAG is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oodflow.io import FormatError, read_json, write_json

SCALES = ("smoke", "embedded", "paper", "custom")
PAPER_CONFIGS = Path(__file__).resolve().parents[2] / "config" / "papers"
#: The config keys of each part whose values make up its protocol (besides the part's own section).
_SPINE_KEYS = (
    "seed",
    "benchmark",
    "datasets",
    "runs",
    "sweeps",
    "seeds",
    "scores",
    "evaluation",
    "adversarial",
)
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
    if embedded:
        return "embedded"
    return "paper" if matches_paper(config, part) else "custom"


def folder(config: Mapping[str, Any], part: str) -> str:
    """The results folder ``part`` of a validated config writes (as rules/common.smk names it)."""
    if part == "spine":
        return config.get("name") or config["benchmark"]["name"]
    if part == "osr":
        return config["osr"]["name"]
    return config["multilabel"]["benchmark"]["name"]


def parts(config: Mapping[str, Any]) -> dict[str, str]:
    """Results folder -> part of everything a validated config writes (spine only with runs)."""
    present = {"spine": bool(config["runs"]), "osr": bool(config.get("osr")),
               "multilabel": bool(config.get("multilabel"))}  # fmt: skip
    return {folder(config, part): part for part in PARTS if present[part]}


def _protocol_of(config: Mapping[str, Any], part: str) -> Any:
    if part == "spine":
        return {k: config.get(k) for k in _SPINE_KEYS}
    return {"seed": config.get("seed"), "datasets": config.get("datasets"), part: config.get(part)}


def matches_paper(config: Mapping[str, Any], part: str, papers: str | Path = PAPER_CONFIGS) -> bool:
    """Whether ``part`` of a validated config is that of the paper config writing the same folder."""
    import json

    from oodflow import yamlfile
    from oodflow.config import load

    if part not in PARTS:
        raise ValueError(f"unknown part '{part}'; valid: {', '.join(PARTS)}")
    mine = json.dumps(_protocol_of(config, part), sort_keys=True, default=str)
    for path in sorted(Path(papers).glob("*.yaml")):
        raw = yamlfile.safe_load(path.read_text()) or {}
        if part != "spine" and not raw.get(part):
            continue
        if part == "spine" and not raw.get("runs") and not raw.get("sweeps"):
            continue
        paper = load(path)
        if folder(paper, part) == folder(config, part):
            if json.dumps(_protocol_of(paper, part), sort_keys=True, default=str) == mine:
                return True
    return False


def protocol(config: Mapping[str, Any], part: str) -> dict[str, Any]:
    """What a reader needs to judge ``part``'s numbers: epochs per run, trials, set sizes."""
    if part == "spine":
        b = config["benchmark"]
        sizes = ("train_per_class", "val_per_class", "test_per_class", "ood_size", "aux_size")
        return {
            "benchmark": b["name"],
            "sizes": {k: b.get(k) for k in sizes},
            "epochs": {run: spec["epochs"] for run, spec in config["runs"].items()},
        }
    if part == "osr":
        o = config["osr"]
        out = {"datasets": o["datasets"], "trials": o["trials"], "epochs": o["train"]["epochs"]}
        caps = {k: v for k, v in (o.get("per_class") or {}).items() if v is not None}
        return {**out, "per_class": caps} if caps else out  # uncapped: the record as before
    m = config["multilabel"]
    sizes = ("train_size", "val_size", "test_size", "ood_size", "oe_size", "image_size")
    return {
        "benchmark": m["benchmark"]["name"],
        "sizes": {k: m["benchmark"].get(k) for k in sizes},
        "epochs": {run: spec["epochs"] for run, spec in m["runs"].items()},
    }


def record(config: Mapping[str, Any], part: str) -> dict[str, Any]:
    """The provenance record of ``part`` of a config (what :func:`write` stores)."""
    return {"part": part, "scale": scale(config, part), "protocol": protocol(config, part)}


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

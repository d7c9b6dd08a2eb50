"""The reproduction scorecard: every number the five papers report, beside ours and the delta.

The reported numbers and where ours come from live in one YAML file
(``config/papers/references/scorecard.yaml``). Each entry has a reported value in % (``null`` when the
paper's number could not be retrieved) and a ``paper_scale`` *lookup* into our long-format metrics
table of the paper config's results (``results/<folder>/tables/metrics.csv``, columns ``benchmark,
run, model, method, score, ood_set, metric, value``). The embedded default's numbers are never set
against the papers' (different data and model: the delta would mean nothing); what the default can
test, each paper's qualitative findings, is the claims table (:mod:`oodflow.report.claims`).

A lookup selects rows by ``results`` (the folder), optionally ``benchmark``, ``run`` (a glob; several
matching runs, e.g. OSR trials, are averaged), ``score``, ``metric`` and ``ood_set`` (one name, a list
whose mean is taken, or ``"*"``: every OOD set of the table, i.e. the rows other than ``id``).

The scorecard never invents a value: a lookup whose results are absent is ``not run``, one whose
results exist but hold no matching row is ``no such row`` (a renamed run or score shows up here
rather than as a silent blank), and an entry without a reported number says ``not retrieved``.
Importing this module is cheap (no pandas, no torch).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oodflow.io import FormatError

SCALES = ("paper",)
LOOKUP_KEYS = ("results", "benchmark", "run", "score", "ood_set", "metric")
ENTRY_KEYS = ("paper", "quantity", "reported", "source", "verified", "paper_scale")
#: Metrics reported as fractions in our tables and as % in the papers.
PERCENT_METRICS = ("accuracy", "AUROC", "AUPR-In", "AUPR-Out", "FPR@95", "OSCR", "F1", "mAP")
#: The status of a paper-scale row whose folder records a run other than the paper's experiment
#: (oodflow.provenance): our number is shown, the delta is not.
NOT_THE_PAPERS = {"smoke": "ran (smoke)", "custom": "ran (custom protocol)"}
COLUMNS = ("paper", "quantity", "scale", "reported", "ours", "delta", "status", "source", "verified", "where")


@dataclass(frozen=True)
class Lookup:
    """Which rows of which metrics table hold our number (see the module docstring)."""

    results: str
    run: str
    score: str
    ood_set: str | tuple[str, ...]
    metric: str
    benchmark: str | None = None

    def describe(self) -> str:
        sets = ",".join(self.ood_set) if isinstance(self.ood_set, tuple) else self.ood_set
        bench = f"{self.benchmark}/" if self.benchmark else ""
        return f"results/{self.results}: {bench}{self.run} {self.score} {sets} {self.metric}"


@dataclass(frozen=True)
class Entry:
    """One reported number of one paper."""

    paper: str
    quantity: str
    reported: float | None
    source: str
    verified: bool
    lookups: dict[str, Lookup]  # scale ("paper") -> lookup


def _lookup(raw: Any, where: str) -> Lookup:
    if not isinstance(raw, Mapping):
        raise FormatError(f"{where}: expected a mapping of {', '.join(LOOKUP_KEYS)}")
    for key in raw:
        if key not in LOOKUP_KEYS:
            raise FormatError(f"{where}: unknown key '{key}'; valid: {', '.join(LOOKUP_KEYS)}")
    for key in ("results", "run", "score", "ood_set", "metric"):
        if key not in raw:
            raise FormatError(f"{where}: '{key}' is required")
    ood = raw["ood_set"]
    if isinstance(ood, list):
        if not ood or not all(isinstance(o, str) for o in ood):
            raise FormatError(f"{where}.ood_set: expected a name, a non-empty list of names or '*'")
        ood = tuple(ood)
    elif not isinstance(ood, str):
        raise FormatError(f"{where}.ood_set: expected a name, a non-empty list of names or '*'")
    for key in ("results", "run", "score", "metric", "benchmark"):
        if key in raw and not isinstance(raw[key], str):
            raise FormatError(f"{where}.{key}: expected text, got {raw[key]!r}")
    return Lookup(raw["results"], raw["run"], raw["score"], ood, raw["metric"], raw.get("benchmark"))


def parse_scorecard(raw: Any, where: str = "scorecard") -> tuple[dict[str, str], list[Entry]]:
    """Validate the reference file's content; returns ``(papers, entries)``."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("papers"), Mapping):
        raise FormatError(f"{where}: expected 'papers' (key -> title) and 'entries'")
    papers = {str(k): str(v) for k, v in raw["papers"].items()}
    entries = raw.get("entries")
    if not isinstance(entries, list) or not entries:
        raise FormatError(f"{where}.entries: expected a non-empty list")
    out = []
    for i, item in enumerate(entries):
        at = f"{where}.entries.{i}"
        if not isinstance(item, Mapping):
            raise FormatError(f"{at}: expected a mapping")
        for key in item:
            if key == "embedded":
                raise FormatError(
                    f"{at}.embedded: embedded lookups are gone (a delta to a different experiment "
                    "means nothing); test the paper's finding in claims.yaml"
                )
            if key not in ENTRY_KEYS:
                raise FormatError(f"{at}: unknown key '{key}'; valid: {', '.join(ENTRY_KEYS)}")
        if item.get("paper") not in papers:
            raise FormatError(f"{at}.paper: '{item.get('paper')}' is not one of {', '.join(papers)}")
        for key in ("quantity", "source"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise FormatError(f"{at}.{key}: required text")
        reported = item.get("reported")
        if reported is not None and (
            isinstance(reported, bool) or not isinstance(reported, (int, float)) or not 0 <= reported <= 100
        ):
            raise FormatError(f"{at}.reported: expected a percentage in [0, 100] or null, got {reported!r}")
        if not isinstance(item.get("verified"), bool):
            raise FormatError(f"{at}.verified: expected true or false")
        lookups = (
            {"paper": _lookup(item["paper_scale"], f"{at}.paper_scale")} if item.get("paper_scale") else {}
        )
        if reported is not None and not lookups:
            raise FormatError(f"{at}: a reported number needs a paper_scale lookup")
        out.append(
            Entry(
                item["paper"],
                item["quantity"].strip(),
                None if reported is None else float(reported),
                item["source"].strip(),
                item["verified"],
                lookups,
            )
        )
    return papers, out


def load_scorecard(path: str | Path) -> tuple[dict[str, str], list[Entry]]:
    from oodflow.report.references import read_yaml

    path = Path(path)
    return parse_scorecard(read_yaml(path, "scorecard reference file"), str(path))


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """The rows of a long-format metrics table (checked for the expected columns)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        needed = {"benchmark", "run", "score", "ood_set", "metric", "value"}
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise FormatError(f"{path}: not a metrics table (missing columns {', '.join(sorted(missing))})")
        return list(reader)


def find(rows: Iterable[Mapping[str, str]], lookup: Lookup) -> float | None:
    """Our value (in % for percentage metrics) for ``lookup``, or None when no row matches.

    Rows are filtered by benchmark/run (glob)/score/metric; OOD sets are averaged per run (``"*"``:
    all but ``id``; a list: exactly those, every one must be present), then runs are averaged.
    """
    per_run: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows:
        if lookup.benchmark is not None and row["benchmark"] != lookup.benchmark:
            continue
        if row["score"] != lookup.score or row["metric"] != lookup.metric:
            continue
        if not fnmatch.fnmatchcase(row["run"], lookup.run):
            continue
        per_run.setdefault((row["benchmark"], row["run"]), {})[row["ood_set"]] = float(row["value"])
    values = []
    for sets in per_run.values():
        if lookup.ood_set == "*":
            chosen = [v for name, v in sets.items() if name != "id"]
        elif isinstance(lookup.ood_set, tuple):
            if not all(name in sets for name in lookup.ood_set):
                continue
            chosen = [sets[name] for name in lookup.ood_set]
        else:
            chosen = [sets[lookup.ood_set]] if lookup.ood_set in sets else []
        if chosen:
            values.append(sum(chosen) / len(chosen))
    if not values:
        return None
    value = sum(values) / len(values)
    return 100.0 * value if lookup.metric in PERCENT_METRICS else value


def build(
    entries: Iterable[Entry],
    tables: Mapping[str, Iterable[Mapping[str, str]]],
    scales: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Scorecard rows: one per entry (its paper-scale lookup), or one ``not retrieved`` row.

    ``tables`` maps a results folder name to the rows of its metrics table (what has been run);
    ``scales`` a folder to the scale its ``provenance.json`` records (:mod:`oodflow.provenance`). The
    paper-scale row of an entry always appears (``not run`` until its results exist); a paper-scale
    row whose folder holds a smoke run says ``ran (smoke)``, one with another protocol than the
    paper config's (fewer epochs, trials, images) ``ran (custom protocol)``: our number, no delta.
    """
    tables = {name: list(rows) for name, rows in tables.items()}
    scales = dict(scales or {})
    out = []
    for e in entries:
        base = {"paper": e.paper, "quantity": e.quantity, "source": e.source, "verified": e.verified}
        if e.reported is None:
            out.append({**base, "scale": "-", "reported": None, "ours": None, "delta": None,
                        "status": "not retrieved", "where": ""})  # fmt: skip
            continue
        lookup, ours = e.lookups["paper"], None  # parse_scorecard: a reported number has one
        if lookup.results not in tables:
            status = f"not run (no results/{lookup.results})"
        else:
            ours = find(tables[lookup.results], lookup)
            status = "ok" if ours is not None else "no such row"
        delta = None if ours is None else ours - e.reported
        if ours is not None and scales.get(lookup.results) in NOT_THE_PAPERS:
            status, delta = NOT_THE_PAPERS[scales[lookup.results]], None
        out.append({**base, "scale": "paper", "reported": e.reported, "ours": ours, "delta": delta,
                    "status": status, "where": lookup.describe()})  # fmt: skip
    return out


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [r["paper"], r["quantity"], r["scale"], _fmt(r["reported"]), _fmt(r["ours"]),
             _fmt(r["delta"], signed=True), r["status"], r["source"], str(r["verified"]).lower(), r["where"]]
        )  # fmt: skip
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]], papers: Mapping[str, str], ran: Iterable[str]) -> str:
    """One section per paper; a caption says which results were found and how to read the rows."""
    ran = sorted(ran)
    lines = [
        "# Reproduction scorecard",
        "",
        "Every number the five papers report, in %, beside ours and the delta (ours − reported). "
        "`paper` rows compare with the paper config's results; they stay empty (`not run`) until someone "
        "runs that config, never filled with a guess. (The default CPU run's numbers are not set against "
        "the papers': different data and model; its test of the papers' findings is the claims "
        "table.) `not retrieved`: the paper's number "
        "could not be read; `no such row`: the results exist but hold no such run/score; `ran (smoke)`: the "
        "paper config ran at toy scale on fake data (`python -m oodflow.smoke`), so the code path works "
        "and its number means nothing; `ran (custom protocol)`: paper-scale data, but not the paper "
        "config's protocol (epochs, trials, set sizes; see the folder's provenance.json), so no delta. "
        "Numbers marked ✗ are UNVERIFIED in the specification.",
        "",
        f"Results found: {', '.join(f'`results/{r}`' for r in ran) or 'none'}.",
    ]
    for key, title in papers.items():
        mine = [r for r in rows if r["paper"] == key]
        if not mine:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            "| Quantity | Scale | Reported | Ours | Δ | Status |",
            "|---|---|---|---|---|---|",
        ]
        for r in mine:
            mark = "" if r["verified"] else " ✗"
            reported = _fmt(r["reported"]) + (mark if r["reported"] is not None else "")
            lines.append(
                f"| {r['quantity']} | {r['scale']} | {reported or '–'} | {_fmt(r['ours']) or '–'} | "
                f"{_fmt(r['delta'], signed=True) or '–'} | {r['status']} |"
            )
    return "\n".join(lines) + "\n"

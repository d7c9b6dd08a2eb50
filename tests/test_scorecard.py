"""The reproduction scorecard: reference file, lookups into metrics tables, statuses, formats."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oodflow.io import FormatError
from oodflow.report import scorecard as sc

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "config" / "papers" / "references" / "scorecard.yaml"
SPEC = ROOT.parent / "shared" / "reference" / "methods.md"

#: Every reported number of the five papers in the specification (methods.md 2.1, 3.7, 3.8, 4.5, 4.6).
SPEC_NUMBERS = [67.56, 76.00, 25.32, 18.40, 50.97, 35.92, 40.64, 34.29, 7.39, 71.9, 75.6, 85.0, 94.7,
                92.0, 91.6, 73.1, 67.7, 93.82, 31.30, 93.37, 24.42, 95.00]  # fmt: skip


def test_shipped_reference_lists_every_reported_number_of_the_specification():
    papers, entries = sc.load_scorecard(REFERENCE)
    assert set(papers) == {"edge", "food101", "dias", "adapt", "aoe"}
    reported = sorted(e.reported for e in entries if e.reported is not None)
    assert sorted(SPEC_NUMBERS) == reported
    # papers without a retrievable number say so explicitly
    assert {e.paper for e in entries if e.reported is None} >= {"edge", "aoe", "adapt"}
    if SPEC.is_file():  # the numbers are the specification's, not retyped wrongly
        text = SPEC.read_text() + (SPEC.parent / "ecosystem.md").read_text()
        for value in SPEC_NUMBERS:
            assert f"{value:.2f}" in text or f"{value:.1f}" in text, value


def row(run, score, ood, metric, value, bench="b"):
    return {
        "benchmark": bench,
        "run": run,
        "score": score,
        "ood_set": ood,
        "metric": metric,
        "value": str(value),
    }


TABLE = [
    row("base", "-", "id", "accuracy", 0.9),
    row("base", "energy", "a", "AUROC", 0.8),
    row("base", "energy", "b", "AUROC", 0.6),
    row("base", "energy", "id", "AUROC", 0.99),  # not an OOD set: never part of "*"
    row("dias-trial0", "msp", "unknown", "AUROC", 0.7, bench="osr-F1-x"),
    row("dias-trial1", "msp", "unknown", "AUROC", 0.9, bench="osr-F1-x"),
    row("dias-trial0", "msp", "unknown", "AUROC", 0.1, bench="osr-AUROC-x"),
]


@pytest.mark.parametrize(
    "lookup, expected",
    [
        (sc.Lookup("r", "base", "-", "id", "accuracy"), 90.0),
        (sc.Lookup("r", "base", "energy", "a", "AUROC"), 80.0),
        (sc.Lookup("r", "base", "energy", "*", "AUROC"), 70.0),
        (sc.Lookup("r", "base", "energy", ("a", "b"), "AUROC"), 70.0),
        (sc.Lookup("r", "dias-trial*", "msp", "unknown", "AUROC", benchmark="osr-F1-x"), 80.0),
        (sc.Lookup("r", "dias-trial*", "msp", "unknown", "AUROC"), (0.7 + 0.9 + 0.1) / 3 * 100),
        (sc.Lookup("r", "base", "energy", ("a", "zz"), "AUROC"), None),  # every listed set must be there
        (sc.Lookup("r", "base", "msp", "a", "AUROC"), None),
    ],
)
def test_find_averages_sets_then_runs(lookup, expected):
    got = sc.find(TABLE, lookup)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_build_never_invents_a_value():
    entries = [
        sc.Entry("p", "acc", 92.0, "s", True, {"paper": sc.Lookup("big", "base", "-", "id", "accuracy")}),
        sc.Entry("p", "here", 92.0, "s", True, {"paper": sc.Lookup("r", "base", "-", "id", "accuracy")}),
        sc.Entry("p", "renamed", 50.0, "s", False, {"paper": sc.Lookup("r", "gone", "-", "id", "accuracy")}),
        sc.Entry("p", "table", None, "not readable", False, {}),
    ]  # fmt: skip
    rows = sc.build(entries, {"r": TABLE})
    got = [(r["quantity"], r["scale"], r["status"], r["ours"], r["delta"]) for r in rows]
    assert got == [
        ("acc", "paper", "not run (no results/big)", None, None),
        ("here", "paper", "ok", pytest.approx(90.0), pytest.approx(-2.0)),
        ("renamed", "paper", "no such row", None, None),
        ("table", "-", "not retrieved", None, None),
    ]
    md = sc.to_markdown(rows, {"p": "Paper P"}, ["r"])
    assert "## Paper P" in md and "| acc | paper | 92.00 | – | – | not run (no results/big) |" in md
    assert "| renamed | paper | 50.00 ✗ |" in md and "`results/r`" in md
    csv_lines = sc.to_csv(rows).splitlines()
    assert csv_lines[0] == ",".join(sc.COLUMNS) and csv_lines[2].startswith("p,here,paper,92.00,90.00,-2.00,")


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda r: r["entries"][0].update(reported=120), "entries.0.reported"),
        (lambda r: r["entries"][0].update(paper="nope"), "entries.0.paper"),
        (lambda r: r["entries"][0].update(verified="yes"), "entries.0.verified"),
        (
            lambda r: r["entries"][0]["paper_scale"].pop("metric"),
            "entries.0.paper_scale: 'metric' is required",
        ),
        (lambda r: r["entries"][0]["paper_scale"].update(ood="x"), "unknown key 'ood'"),
        (lambda r: r["entries"][0].pop("paper_scale"), "needs a paper_scale"),
        (
            lambda r: r["entries"][0].update(embedded=r["entries"][0]["paper_scale"]),
            "embedded lookups are gone",
        ),
    ],
)
def test_bad_reference_files_name_the_key(mutate, words):
    raw = yaml.safe_load(REFERENCE.read_text())
    mutate(raw)
    with pytest.raises(FormatError, match=words):
        sc.parse_scorecard(raw)


def test_read_metrics_checks_columns(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("run,value\nx,1\n")
    with pytest.raises(FormatError, match="missing columns benchmark, metric, ood_set, score"):
        sc.read_metrics(bad)


def test_paper_rows_of_a_smoke_run_say_so_without_a_delta():
    """A paper-scale lookup into a folder whose provenance records a smoke run: 'ran (smoke)', our
    number shown, no delta; the same folder without that record gives 'ok' and the delta."""
    entry = sc.Entry("p", "acc", 80.0, "s", True, {"paper": sc.Lookup("r", "base", "-", "id", "accuracy")})
    (smoke,) = sc.build([entry], {"r": TABLE}, {"r": "smoke"})
    assert (smoke["status"], smoke["ours"], smoke["delta"]) == ("ran (smoke)", 90.0, None)
    (real,) = sc.build([entry], {"r": TABLE}, {"r": "paper"})
    assert real["status"] == "ok" and real["delta"] == pytest.approx(10.0)
    (custom,) = sc.build([entry], {"r": TABLE}, {"r": "custom"})
    assert (custom["status"], custom["ours"], custom["delta"]) == ("ran (custom protocol)", 90.0, None)
    (absent,) = sc.build([entry], {}, {"r": "smoke"})
    assert absent["status"].startswith("not run")


def test_rule_inputs_are_relative_inside_the_working_directory_absolute_outside(tmp_path):
    from oodflow.report.references import rule_input

    work = tmp_path / "checkout"
    assert rule_input(work / "config" / "x.yaml", work) == "config/x.yaml"
    assert rule_input(work / "config" / ".." / "config" / "x.yaml", work) == "config/../config/x.yaml"
    assert rule_input(tmp_path / "elsewhere.yaml", work) == str(tmp_path / "elsewhere.yaml")  # no '..'


@pytest.mark.parametrize(
    "config, references",
    [
        ("food101", ["food101.yaml", "scorecard.yaml"]),
        ("osr_tinyimagenet_800", ["osr_tinyimagenet_800.yaml"]),
    ],
)
def test_reference_files_are_relative_rule_inputs_in_the_checkout(config, references):
    """Issue 23 item 6: run in the checkout (the usual working directory), no rule takes an absolute
    input (a moved checkout would rerun it), and the reference inputs are the checkout's files."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snakemake", "--nolock", "--cores", "1", "--dry-run",
           "--configfile", f"config/papers/{config}.yaml"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    inputs = {
        path.strip()
        for line in proc.stdout.splitlines()
        if line.startswith("    input: ")
        for path in line[len("    input: ") :].split(",")
    }
    assert inputs and not [p for p in inputs if Path(p).is_absolute()]
    for name in references:
        assert f"config/papers/references/{name}" in inputs, name
        assert (ROOT / "config" / "papers" / "references" / name).is_file()


def test_another_configs_osr_results_in_the_workspace_are_read_not_rebuilt(tmp_path):
    """A config without an osr section, run where the default's results/osr was left: the scorecard
    reads results/osr/tables/metrics.csv as a plain input; no osr rule claims it (it used to raise
    "'NoneType' object is not subscriptable" while building the DAG)."""
    import subprocess
    import sys

    table = tmp_path / "results" / "osr" / "tables" / "metrics.csv"
    table.parent.mkdir(parents=True)
    table.write_text("part,run,score,ood_set,metric,value\n")
    food101 = str(ROOT / "config" / "papers" / "food101.yaml")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--nolock", "--cores", "1", "--dry-run", "--configfile", food101]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "osr_report" not in proc.stdout

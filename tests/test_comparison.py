"""Two-run comparison tables (baseline vs candidate per OOD set) and reported-number sidecars."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from oodflow import steps
from oodflow.config import ConfigError, load_schema, validate
from oodflow.io import FormatError
from oodflow.report import references, tables
from oodflow.report.comparison import comparison_frame, improvement, render

ROOT = Path(__file__).resolve().parents[1]
SETS = {"a": "near", "b": "near", "c": "far"}
#: Hand-made fractions: FPR@95 of (run, set), and ID accuracy per run.
FPR = {("base", "a"): 0.50, ("base", "b"): 0.30, ("base", "c"): 0.10, ("ft", "a"): 0.35, ("ft", "b"): 0.40}
FPR[("ft", "c")] = 0.04
ACC = {"base": 0.6756, "ft": 0.76}
SPEC = {"name": "ft_vs_base", "baseline": "base", "candidate": "ft", "scores": ["energy"], "metric": "FPR@95"}


def metrics_frame(other_score: bool = False) -> pd.DataFrame:
    rows = []
    for run in ("base", "ft"):
        base = {"benchmark": "bench", "run": run, "model": "m", "method": "x"}
        rows.append({**base, "score": "-", "ood_set": "id", "metric": "accuracy", "value": ACC[run]})
        for score in ("energy", "msp") if other_score else ("energy",):
            for ood in SETS:
                for metric in tables.METRICS:
                    value = FPR[(run, ood)] if metric == "FPR@95" else 0.9
                    if score == "msp":
                        value = 0.99
                    rows.append({**base, "score": score, "ood_set": ood, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=list(tables.COLUMNS))


REFERENCE = {
    "source": "the paper's README",
    "notes": "setup differs",
    "accuracy": {"baseline": 67.56, "candidate": 76.0},
    "metrics": {
        "FPR@95": {"energy": {"baseline": {"a": 25.32, "b": 40.0}, "candidate": {"a": 18.40, "b": 30.0}}}
    },
}


def test_improvement_is_signed_so_that_positive_means_better():
    assert improvement(50.0, 35.0, "FPR@95") == 15.0  # lower is better
    assert improvement(80.0, 90.0, "AUROC") == 10.0  # higher is better
    assert improvement(67.56, 76.0, "accuracy") == pytest.approx(8.44)


def test_table_has_closed_form_improvements_and_means():
    ref = references.parse_reference(REFERENCE, SETS)
    table = comparison_frame(metrics_frame(other_score=True), SPEC, SETS, ref).set_index("ood_set")
    assert list(table.index) == ["ID accuracy", "a", "b", "c", "near-OOD mean", "far-OOD mean", "mean"]
    assert table.loc["a", "baseline"] == pytest.approx(50.0) and table.loc["a", "candidate"] == pytest.approx(
        35.0
    )
    assert table.loc["a", "improvement"] == pytest.approx(15.0)
    assert table.loc["b", "improvement"] == pytest.approx(-10.0)  # the candidate got worse here
    assert table.loc["c", "improvement"] == pytest.approx(6.0)
    assert table.loc["near-OOD mean", "baseline"] == pytest.approx(40.0)
    assert table.loc["near-OOD mean", "improvement"] == pytest.approx(2.5)
    assert table.loc["far-OOD mean", "candidate"] == pytest.approx(4.0)
    assert table.loc["mean", "improvement"] == pytest.approx((15.0 - 10.0 + 6.0) / 3)
    acc = table.loc["ID accuracy"]
    assert (acc.baseline, acc.candidate, acc.improvement) == pytest.approx((67.56, 76.0, 8.44))
    assert (acc.reported_baseline, acc.reported_candidate) == (67.56, 76.0)
    # reported numbers: where given, with their own improvement; means only over complete groups
    assert table.loc["a", "reported_improvement"] == pytest.approx(6.92)
    assert table.loc["near-OOD mean", "reported_baseline"] == pytest.approx((25.32 + 40.0) / 2)
    assert math.isnan(table.loc["c", "reported_baseline"]) and math.isnan(
        table.loc["mean", "reported_baseline"]
    )
    assert set(table.score) == {"-", "energy"}  # msp is in the metrics but not compared


def test_higher_is_better_metrics_flip_the_sign():
    table = comparison_frame(metrics_frame(), {**SPEC, "metric": "AUROC"}, SETS).set_index("ood_set")
    assert table.loc["a", "improvement"] == pytest.approx(0.0)
    assert table.loc["ID accuracy", "improvement"] == pytest.approx(8.44)
    assert table.reported_baseline.isna().all()


def test_markdown_and_latex_layout():
    ref = references.parse_reference(REFERENCE, SETS)
    table = comparison_frame(metrics_frame(), SPEC, SETS, ref)
    md, tex = render(table, SPEC, "bench", ref)
    lines = md.splitlines()
    assert (
        lines[0].startswith("**bench: FPR@95 in % (lower is better) of base vs ft") and "README" in lines[0]
    )
    assert (
        lines[2] == "| Score | OOD set | Group | base | ft | Δ | reported base | reported ft | reported Δ |"
    )
    assert lines[4] == "| - | ID accuracy |  | 67.56 | 76.00 | +8.44 | 67.56 | 76.00 | +8.44 |"
    assert lines[5] == "| energy | a | near | 50.00 | 35.00 | +15.00 | 25.32 | 18.40 | +6.92 |"
    assert lines[6] == "| energy | b | near | 30.00 | 40.00 | -10.00 | 40.00 | 30.00 | +10.00 |"
    assert lines[7] == "| energy | c | far | 10.00 | 4.00 | +6.00 | – | – | – |"
    assert len(lines) == 4 + len(table)
    assert "\\caption{bench: FPR@95 in \\% (lower is better)" in tex and "$\\Delta$" in tex
    assert "energy & a & near & 50.00 & 35.00 & +15.00 & 25.32 & 18.40 & +6.92 \\\\" in tex
    assert "energy & c & far & 10.00 & 4.00 & +6.00 & -- & -- & -- \\\\" in tex
    assert tex.count("\\midrule") == 2  # after the header and between the accuracy row and the score
    md_plain, _ = render(table, SPEC, "bench", None)  # no reference: no reported columns
    assert "reported" not in md_plain and md_plain.splitlines()[2].count("|") == 7


def test_missing_run_in_metrics_is_a_clear_error():
    with pytest.raises(ValueError, match="metrics table has no run 'other'"):
        comparison_frame(metrics_frame(), {**SPEC, "candidate": "other"}, SETS)


# ---------------------------------------------------------------------------------- references
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("source"), "'source'"),
        (lambda r: r["accuracy"].update(baseline=101), r"accuracy.baseline: expected a percentage"),
        (lambda r: r["accuracy"].update(best=1), "unknown role 'best'"),
        (lambda r: r["metrics"].update({"FPR@90": {}}), "unknown metric 'FPR@90'"),
        (
            lambda r: r["metrics"]["FPR@95"]["energy"]["baseline"].update(z=3),
            "energy.baseline: unknown OOD set 'z'",
        ),
        (
            lambda r: r["metrics"]["FPR@95"]["energy"]["baseline"].update(a="7"),
            r"baseline.a: expected a percentage",
        ),
        (lambda r: r.update(extra=1), "unknown key 'extra'"),
    ],
)
def test_reference_errors_name_the_key(edit, message):
    raw = yaml.safe_load(yaml.safe_dump(REFERENCE))
    edit(raw)
    with pytest.raises(FormatError, match=message):
        references.parse_reference(raw, SETS)


def test_metric_names_agree_with_the_tables_and_the_schema():
    assert tuple(references.METRIC_NAMES) == tuple(tables.METRICS)
    items = load_schema()["properties"]["report"]["properties"]["comparisons"]["items"]
    assert set(items["properties"]["metric"]["enum"]) == set(tables.METRICS)


def test_the_food101_reference_holds_the_reported_numbers():
    from oodflow.data.benchmarks import FOOD101

    ref = references.load_reference("config/papers/references/food101.yaml", FOOD101.ood_sets)
    assert ref["accuracy"] == {"baseline": 67.56, "candidate": 76.0}
    energy = ref["metrics"]["FPR@95"]["energy"]
    assert energy["baseline"] == {"dtd": 25.32, "flowers102": 50.97, "oxford_pets": 40.64}
    assert energy["candidate"] == {"dtd": 18.40, "flowers102": 35.92, "oxford_pets": 34.29}
    assert ref["metrics"]["FPR@95"]["cores"] == {"baseline": {"dtd": 7.39}}


# --------------------------------------------------------------------------------------- config
def embedded_config(comparisons, **runs) -> dict:
    return {
        "benchmark": {"name": "mnist5k"},
        "runs": {
            "base": {"model": "small_cnn", "method": "ce"},
            "ft": {"model": "small_cnn", "method": "energy_ft", "init_from": "base"},
            **runs,
        },
        "scores": {"energy": {}, "msp": {}},
        "report": {"comparisons": comparisons},
    }


def test_comparisons_default_to_none():
    cfg = validate({k: v for k, v in embedded_config([]).items() if k != "report"})
    assert cfg["report"] == {"comparisons": [], "bootstrap": 200}


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"baseline": "nope"}, "report.comparisons.0.baseline: unknown run 'nope'"),
        ({"candidate": "base"}, "report.comparisons.0.candidate: the same run as the baseline"),
        ({"scores": ["knn"]}, "report.comparisons.0.scores.0: score 'knn' is not in the config's scores"),
        ({"metric": "accuracy"}, "report.comparisons.0.metric"),
        (
            {"reference": "nowhere.yaml"},
            "report.comparisons.0.reference: .*nowhere.yaml: reference file not found",
        ),
    ],
)
def test_comparison_config_errors_name_the_key(edit, key):
    spec = {"name": "c", "baseline": "base", "candidate": "ft", "scores": ["energy"], **edit}
    with pytest.raises(ConfigError, match=key):
        validate(embedded_config([spec]))


def test_duplicate_comparison_names_and_bad_reference_content(tmp_path):
    spec = {"name": "c", "baseline": "base", "candidate": "ft", "scores": ["energy"]}
    with pytest.raises(ConfigError, match="report.comparisons.1.name: 'c' is used twice"):
        validate(embedded_config([spec, spec]))
    bad = tmp_path / "ref.yaml"
    bad.write_text(
        yaml.safe_dump({"source": "x", "metrics": {"FPR@95": {"energy": {"baseline": {"dtd": 1}}}}})
    )
    with pytest.raises(ConfigError, match="unknown OOD set 'dtd'; valid: textures, photos"):
        validate(embedded_config([{**spec, "reference": str(bad)}]))


def test_steps_write_table_files_from_a_metrics_csv(tmp_path):
    cfg = validate(embedded_config([]))
    cfg["benchmark"]["ood_sets"] = ["textures", "photos", "uniform"]
    spec = {**SPEC, "reference": None}
    cfg["report"]["comparisons"] = [spec]
    frame = metrics_frame().replace({"ood_set": {"a": "textures", "b": "photos", "c": "uniform"}})
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    out = {ext: str(tmp_path / f"t.{ext}") for ext in ("md", "tex", "csv")}
    steps.comparison_table(
        cfg, "ft_vs_base", str(tmp_path / "metrics.csv"), out["md"], out["tex"], out["csv"]
    )
    table = pd.read_csv(out["csv"])
    assert list(table.ood_set) == [
        "ID accuracy",
        "textures",
        "photos",
        "uniform",
        "mean",
    ]  # embedded: no groups
    assert np.allclose(table.improvement, [8.44, 15.0, -10.0, 6.0, 11.0 / 3], atol=1e-4)
    with pytest.raises(KeyError, match="no comparison 'other'"):
        steps.comparison_table(cfg, "other", str(tmp_path / "metrics.csv"), *out.values())


def test_comparison_figure_is_a_reproducible_png(tmp_path):
    from oodflow.io import save_npz

    cfg = validate(
        embedded_config([{"name": "c", "baseline": "base", "candidate": "ft", "scores": ["energy"]}])
    )
    cfg["benchmark"]["ood_sets"] = ["textures", "uniform"]
    cfg["plots"] = {"bins": 10, "dpi": 50}
    rng = np.random.default_rng(0)
    for run in ("base", "ft"):
        save_npz(tmp_path / f"{run}.npz", **{k: rng.normal(size=50) for k in ("id", "textures", "uniform")})
    outs = [tmp_path / f"{i}.png" for i in range(2)]
    for out in outs:
        steps.comparison_figure(
            cfg, "c", "energy", str(tmp_path / "base.npz"), str(tmp_path / "ft.npz"), str(out)
        )
    assert outs[0].read_bytes().startswith(b"\x89PNG") and outs[0].read_bytes() == outs[1].read_bytes()


def test_step_reads_a_reference_input_relative_to_the_working_directory(tmp_path, monkeypatch):
    """Rule inputs are relative to the working directory, not the repository root (the reverted
    relative-reference change broke exactly this when the working directory was not the checkout)."""
    cfg = validate(embedded_config([]))
    cfg["benchmark"]["ood_sets"] = ["textures", "photos", "uniform"]
    ref = {**REFERENCE, "metrics": {"FPR@95": {"energy": {"baseline": {"textures": 25.32}}}}}
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "mine.yaml").write_text(yaml.safe_dump(ref))
    cfg["report"]["comparisons"] = [{**SPEC, "reference": None}]
    frame = metrics_frame().replace({"ood_set": {"a": "textures", "b": "photos", "c": "uniform"}})
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    monkeypatch.chdir(tmp_path)
    out = ("t.md", "t.tex", "t.csv")
    steps.comparison_table(cfg, "ft_vs_base", "metrics.csv", *out, reference="refs/mine.yaml")
    md = (tmp_path / "t.md").read_text()
    assert "25.32" in md and "the paper's README" in md

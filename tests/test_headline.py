"""Headline metrics (oodflow.report.headline): the primary score of each run and the means it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from oodflow import config as oodflow_config
from oodflow.io import FormatError
from oodflow.report import headline
from oodflow.report.tables import COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def _rows(bench, run, method, id_metric, id_value, scored):
    """Long-form rows: one ID row, then (score, ood_set, metric, value) rows."""
    base = {"benchmark": bench, "run": run, "model": "m", "method": method}
    rows = [{**base, "score": "-", "ood_set": "id", "metric": id_metric, "value": id_value}]
    rows += [{**base, "score": s, "ood_set": o, "metric": m, "value": v} for s, o, m, v in scored]
    return rows


def test_primary_scores_of_the_default_config():
    cfg = oodflow_config.load(ROOT / "config" / "config.yaml")
    spine = headline.primaries(cfg, "spine")
    assert list(spine) == list(cfg["runs"])
    assert spine["energy_ft"]["score"] == "energy"  # Liu et al. 2020 score their fine-tuned model by energy
    assert spine["baseline"]["score"] == next(iter(cfg["scores"])) == "msp"
    assert spine["palm"]["score"] == cfg["runs"]["palm"]["scores"][0] == "mahalanobis"
    osr = headline.primaries(cfg, "osr")
    assert osr["F1-mnist5k-arpl"] == {"benchmark": "osr-F1-mnist5k", "method": "arpl", "score": "maxlogit"}
    assert osr["F1-mnist5k-softmax"]["score"] == "msp"
    ml = headline.primaries(cfg, "multilabel")
    assert list(ml) == list(cfg["multilabel"]["runs"])
    assert {v["score"] for v in ml.values()} == {next(iter(cfg["multilabel"]["scores"]))}
    assert headline.paths(cfg, "osr", "osr")[0] == "results/osr/headline/F1-mnist5k-softmax.json"


def test_means_over_ood_sets_of_the_primary_score_only():
    scored = [
        ("energy", "a", "AUROC", 0.9), ("energy", "b", "AUROC", 0.7),
        ("energy", "a", "FPR@95", 0.2), ("energy", "b", "FPR@95", 0.4),
        ("msp", "a", "AUROC", 0.1), ("msp", "b", "AUROC", 0.1),
        ("msp", "a", "FPR@95", 0.9), ("msp", "b", "FPR@95", 0.9),
    ]  # fmt: skip
    frame = pd.DataFrame(_rows("mnist5k", "ft", "energy_ft", "accuracy", 0.95, scored), columns=list(COLUMNS))
    out = headline.headline(frame, "spine", {"ft": {"run": "ft", "score": "energy"}})
    assert out == {"ft": {"score": "energy", "accuracy": 0.95, "AUROC": 0.8, "FPR@95": pytest.approx(0.3)}}
    out = headline.headline(frame, "spine", {"ft": {"run": "ft", "score": "msp"}})
    assert out["ft"]["AUROC"] == pytest.approx(0.1) and out["ft"]["FPR@95"] == pytest.approx(0.9)


def test_osr_key_averages_its_trials_and_ignores_other_benchmarks():
    rows = []
    for trial, (acc, auroc) in enumerate([(0.9, 0.8), (0.7, 0.6)]):
        scored = [("maxlogit", "unknown", "AUROC", auroc), ("maxlogit", "unknown", "FPR@95", 0.5)]
        rows += _rows("osr-F1-mnist", f"arpl-trial{trial}", "arpl", "accuracy", acc, scored)
    other = [("maxlogit", "unknown", "AUROC", 0.0), ("maxlogit", "unknown", "FPR@95", 1.0)]
    rows += _rows("osr-AUROC-svhn", "arpl-trial0", "arpl", "accuracy", 0.1, other)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    keys = {"F1-mnist-arpl": {"benchmark": "osr-F1-mnist", "method": "arpl", "score": "maxlogit"}}
    rec = headline.headline(frame, "osr", keys)["F1-mnist-arpl"]
    assert rec["accuracy"] == pytest.approx(0.8) and rec["AUROC"] == pytest.approx(0.7)
    assert rec["FPR@95"] == pytest.approx(0.5)


def test_missing_rows_name_the_key(tmp_path):
    frame = pd.DataFrame(
        _rows("b", "r", "ce", "mAP", 0.5, [("knn", "a", "AUROC", 0.5)]), columns=list(COLUMNS)
    )
    with pytest.raises(FormatError, match="'FPR@95' rows of score 'knn' for r"):
        headline.headline(frame, "multilabel", {"r": {"run": "r", "score": "knn"}})
    with pytest.raises(FormatError, match="no 'accuracy' row for r"):
        headline.headline(frame, "spine", {"r": {"run": "r", "score": "knn"}})


def test_write_one_small_file_per_run(tmp_path):
    cfg = oodflow_config.load(ROOT / "config" / "test.yaml")
    keys = headline.primaries(cfg, "spine")
    rows = []
    for run, sel in keys.items():
        scored = [(sel["score"], o, m, 0.25) for o in ("x", "y") for m in ("AUROC", "FPR@95")]
        rows += _rows("mnist5k", run, "ce", "accuracy", 0.5, scored)
    csv = tmp_path / "metrics.csv"
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(csv, index=False)
    outs = [tmp_path / Path(p).name for p in headline.paths(cfg, "spine", "mnist5k")]
    headline.write(cfg, "spine", csv, outs)
    for out, sel in zip(outs, keys.values(), strict=True):
        assert json.loads(out.read_text()) == {
            "score": sel["score"],
            "accuracy": 0.5,
            "AUROC": 0.25,
            "FPR@95": 0.25,
        }
    with pytest.raises(ValueError, match="expected the headline file of"):
        headline.write(cfg, "spine", csv, list(reversed(outs)))

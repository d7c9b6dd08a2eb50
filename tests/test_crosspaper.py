"""Cross-paper table: seeds pooled into mean ± std, bootstrap intervals, ranking and outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oodflow import metrics
from oodflow.io import save_npz
from oodflow.report import crosspaper


def _scores(path, shift, seed):
    rng = np.random.default_rng(seed)
    save_npz(path, id=rng.normal(shift, 1, 400), a=rng.normal(0, 1, 300), b=rng.normal(-0.5, 1, 200))
    return str(path)


def test_rows_pool_seeds_and_rank_by_auroc(tmp_path):
    files = {
        ("base", "msp"): _scores(tmp_path / "b.npz", 0.5, 0),
        ("new-s0", "msp"): _scores(tmp_path / "n0.npz", 2.0, 1),
        ("new-s1", "msp"): _scores(tmp_path / "n1.npz", 1.5, 2),
    }
    groups = {
        "base": {"method": "ce", "runs": ["base"]},
        "new": {"method": "dias", "runs": ["new-s0", "new-s1"]},
    }
    frame = crosspaper.cross_paper_frame(groups, files, ["a", "b"], 100, seed=0)
    assert list(frame["run"]) == ["new", "base"]
    assert list(frame["paper"]) == ["DIAS objective on this benchmark", "baseline"]
    per_seed = []
    for run in ("new-s0", "new-s1"):
        d = np.load(files[(run, "msp")])
        per_seed.append(np.mean([metrics.auroc(d["id"], d[o]) for o in ("a", "b")]))
    new = frame.iloc[0]
    assert new["AUROC"] == pytest.approx(np.mean(per_seed))
    assert new["AUROC_std"] == pytest.approx(np.std(per_seed, ddof=1)) and new["seeds"] == 2
    assert np.isnan(frame.iloc[1]["AUROC_std"])  # one seed: no spread
    for _, row in frame.iterrows():
        assert row["AUROC_lo"] < row["AUROC_hi"] and row["FPR@95_lo"] <= row["FPR@95_hi"]
    base = frame.iloc[1]
    assert base["AUROC_lo"] <= base["AUROC"] <= base["AUROC_hi"]
    again = crosspaper.cross_paper_frame(groups, files, ["a", "b"], 100, seed=0)
    assert again.equals(frame), "seeded: the same intervals every time"
    md = crosspaper.markdown(frame, "bench", ["a", "b"], 100, "embedded")
    assert "| 1 | new | DIAS objective on this benchmark | msp |" in md and " ± " in md.splitlines()[4]
    assert r"\pm" in crosspaper.latex(frame, "bench")
    crosspaper.ranking_figure(frame, str(tmp_path / "r.png"), "bench", dpi=40)
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_ranking_figure_draws_an_interval_that_misses_its_point(tmp_path):
    """A percentile bootstrap interval may lie wholly on one side of the mean (a toy benchmark with
    ties): the figure draws it from its bounds instead of failing on a negative error bar."""
    frame = pd.DataFrame(
        {
            "run": ["a", "b"],
            "paper": ["p", "q"],
            "score": ["msp", "msp"],
            "AUROC": [0.50, 0.70],
            "AUROC_lo": [0.52, 0.60],
            "AUROC_hi": [0.60, 0.80],
        }  # fmt: skip
    )
    crosspaper.ranking_figure(frame, str(tmp_path / "r.png"), "bench", dpi=40)
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"

"""Adversarial tables and figures, and the sweep table/figure, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oodflow.adversarial import adversarial_auroc_table
from oodflow.report.adversarial import (
    COLUMNS,
    adversarial_figure,
    adversarial_frame,
    combine,
    mean_over_ood_sets,
)
from oodflow.report.sweeps import sweep_figure, sweep_table

PNG = b"\x89PNG\r\n\x1a\n"


def table_rows():
    """ID scores all 1; OOD set 'a' all 0 (AUROC 1) and 'b' all 2 (AUROC 0) at eps 0; at eps 0.5 both
    OOD sets score 1 like the ID set (AUROC 0.5)."""
    id_scores = {"msp": np.ones((2, 4))}
    ood = {"a": {"msp": np.array([[0.0] * 3, [1.0] * 3])}, "b": {"msp": np.array([[2.0] * 3, [1.0] * 3])}}
    return adversarial_auroc_table([0.0, 0.5], id_scores, ood)


def test_frame_labels_rows_with_the_run_in_tidy_columns():
    frame = adversarial_frame(table_rows(), benchmark="bm", run="r", model="m", method="aoe")
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == 2 * 2  # OOD sets x eps (one score)
    assert frame[["ood_set", "eps"]].values.tolist() == [["a", 0.0], ["a", 0.5], ["b", 0.0], ["b", 0.5]]
    assert frame.AUROC.tolist() == [1.0, 0.5, 0.0, 0.5]
    assert (frame.run == "r").all() and (frame.method == "aoe").all()
    with pytest.raises(ValueError, match="lack AUROC"):
        adversarial_frame([{"eps": 0.0, "ood_set": "a", "score": "msp"}], benchmark="b", run="r", model="m",
                          method="ce")  # fmt: skip


def test_combine_keeps_run_order_and_checks_columns(tmp_path):
    paths = []
    for run in ("second", "first"):
        path = tmp_path / f"{run}.csv"
        frame = adversarial_frame(table_rows(), benchmark="bm", run=run, model="m", method="ce")
        frame.to_csv(path, index=False)
        paths.append(str(path))
    frame = combine(paths)
    assert list(dict.fromkeys(frame.run)) == ["second", "first"] and len(frame) == 8
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"run": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="bad.csv: columns"):
        combine([*paths, str(bad)])
    with pytest.raises(ValueError, match="no adversarial tables"):
        combine([])


def test_mean_over_ood_sets_and_figure(tmp_path):
    frames = [
        adversarial_frame(table_rows(), benchmark="bm", run=run, model="m", method="ce") for run in ("z", "a")
    ]
    frame = pd.concat(frames, ignore_index=True)
    means = mean_over_ood_sets(frame)
    # (1 + 0) / 2 at eps 0 and (0.5 + 0.5) / 2 at eps 0.5, runs in table order
    assert means.values.tolist() == [["z", "msp", 0.0, 0.5], ["z", "msp", 0.5, 0.5],
                                     ["a", "msp", 0.0, 0.5], ["a", "msp", 0.5, 0.5]]  # fmt: skip
    fpr = mean_over_ood_sets(frame, "FPR@95")
    assert fpr["FPR@95"].tolist()[0] == pytest.approx(frame[frame.eps == 0]["FPR@95"].iloc[:2].mean())
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        mean_over_ood_sets(frame, "acc")
    out = tmp_path / "fig.png"
    adversarial_figure(frame, out=str(out), title="t", dpi=50)
    assert out.read_bytes()[:8] == PNG


def metrics_frame():
    """Long-form metrics of two swept runs and an unrelated one; two OOD sets, scores msp/energy."""
    rows = []
    for run, base in (("s-0p0", 0.6), ("s-1p0", 0.8), ("other", 0.1)):
        rows.append({"run": run, "score": "-", "ood_set": "id", "metric": "accuracy", "value": base + 0.1})
        for score, shift in (("msp", 0.0), ("energy", 0.05)):
            for ood, delta in (("a", -0.1), ("b", 0.1)):
                for metric in ("AUROC", "AUPR-In", "AUPR-Out", "FPR@95"):
                    rows.append({"run": run, "score": score, "ood_set": ood, "metric": metric,
                                 "value": base + shift + delta})  # fmt: skip
    return pd.DataFrame(rows)


def test_sweep_table_averages_over_ood_sets_in_sweep_order(tmp_path):
    table = sweep_table(metrics_frame(), {"s-1p0": 1.0, "s-0p0": 0.0}, "s", "method_args.eps")
    assert table[["value", "run", "score"]].values.tolist() == [
        [1.0, "s-1p0", "msp"], [1.0, "s-1p0", "energy"], [0.0, "s-0p0", "msp"], [0.0, "s-0p0", "energy"]
    ]  # fmt: skip
    assert table.AUROC.tolist() == pytest.approx([0.8, 0.85, 0.6, 0.65])  # mean of base +- 0.1
    assert table.accuracy.tolist() == pytest.approx([0.9, 0.9, 0.7, 0.7])
    assert set(table.sweep) == {"s"} and set(table.param) == {"method_args.eps"}
    with pytest.raises(ValueError, match="no rows of run\\(s\\) s-2p0"):
        sweep_table(metrics_frame(), {"s-2p0": 2.0}, "s", "method_args.eps")
    for runs in ({"s-0p0": 0.0, "s-1p0": 1.0}, {"s-0p0": "eba", "s-1p0": "fgsm"}):  # numeric, categorical
        out = tmp_path / "sweep.png"
        sweep_figure(sweep_table(metrics_frame(), runs, "s", "p"), out=str(out), title="t", dpi=50)
        assert out.read_bytes()[:8] == PNG

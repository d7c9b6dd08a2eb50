"""End-to-end: the multi-label sub-DAG on a tiny mnist5k-ml config (seconds of training)."""

from __future__ import annotations

import pandas as pd
import yaml

from workflow_runner import snakemake

TINY_RUN = {"model": "small_cnn", "model_args": {"width": 0.25}, "epochs": 2, "batch_size": 32}
CONFIG = {
    "seed": 0,
    "device": "cpu",
    # multi-label only, no spine, as the EDGE paper configs (config/papers/edge_*.yaml)
    "plots": {"dpi": 50},
    "multilabel": {
        "benchmark": {
            "name": "mnist5k-ml",
            "train_size": 120,
            "val_size": 30,
            "test_size": 80,
            "ood_size": 40,
            "oe_size": 64,
            "ood_sets": ["textures", "uniform"],
        },
        "runs": {
            "bce": {**TINY_RUN, "objective": "bce"},
            "edge": {**TINY_RUN, "objective": "edge", "objective_args": {"k": 8, "start_epoch": 1}},
        },
        "scores": {"joint_energy": {}, "max_sigmoid": {}, "knn": {"k": 3}},
        "tail": {"j": [0, 1, 2], "min_images": 2},
        "oe_selection": {"candidates": ["aux", "textures"], "run": "bce", "k": 4, "batch_size": 16},
    },
}
TARGETS = [
    "results/mnist5k-ml/tables/ml_table.md",
    "results/mnist5k-ml/tables/ml_tail.md",
    "results/mnist5k-ml/figures/ml_tail.png",
    "results/mnist5k-ml/tables/ml_oe_selection.csv",
    "results/mnist5k-ml/data/manifest.json",
]


def test_multilabel_subdag_end_to_end(tmp_path):
    cfg = tmp_path / "ml.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    snakemake(tmp_path, *TARGETS, "--configfile", str(cfg))
    out = tmp_path / "results" / "mnist5k-ml"
    frame = pd.read_csv(out / "tables" / "metrics.csv")
    assert list(frame.columns) == [
        "benchmark",
        "run",
        "model",
        "method",
        "score",
        "ood_set",
        "metric",
        "value",
    ]
    maps = frame[frame.metric == "mAP"]
    assert sorted(maps.run) == ["bce", "edge"] and maps.value.between(0, 1).all()
    assert set(frame.score) == {"-", "joint_energy", "max_sigmoid", "knn"}
    tail = pd.read_csv(out / "tables" / "ml_tail.csv")
    assert (
        sorted(tail.j.unique()) == [0, 1, 2] and (tail.groupby("j").n_id.first().diff().dropna() <= 0).all()
    )
    ranked = pd.read_csv(out / "tables" / "ml_oe_selection.csv")
    assert sorted(ranked.oe_set) == ["aux", "textures"] and ranked["rank"].tolist() == [1, 2]
    # a second run has nothing to do
    again = snakemake(tmp_path, *TARGETS, "--configfile", str(cfg), "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr

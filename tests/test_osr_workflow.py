"""The OSR sub-DAG end to end (a tiny config, seconds of training) and the paper configs' plans."""

from __future__ import annotations

import csv
import json
import re

import pytest
import yaml

from oodflow.osr.splits import task
from oodflow.report.tables import COLUMNS
from workflow_runner import ROOT, snakemake

TINY = {
    "seed": 0,
    "device": "cpu",
    "osr": {
        "datasets": ["mnist5k"],
        "splits": ["F1"],
        "trials": [2],
        "methods": {"softmax": {}, "dias": {"fake_ratio": 0.2}},
        "train": {"epochs": 1, "width": 0.125, "batch_size": 16, "milestones": [1]},
        "embedded": {"train_per_class": 6, "test_per_class": 4},
        "scores": {"msp": {}, "energy": {}, "knn": {"k": 3}},
    },
    "plots": {"dpi": 50},
}
TARGETS = [
    "results/osr/tables/metrics.csv",
    "results/osr/tables/auroc.md",
    "results/osr/figures/oscr_curves.png",
]


@pytest.fixture(scope="module")
def osr_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("osr")
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(work, *TARGETS, "--configfile", str(work / "tiny.yaml"))
    return work


@pytest.mark.e2e
def test_osr_dag_writes_tables_metrics_and_curves(osr_run):
    bench = osr_run / "results/osr/F1/mnist5k/trial2"
    meta = json.loads((bench / "data.json").read_text())
    t = task("mnist5k", "F1", 2)
    assert meta["known"] == list(t.known) and meta["mapping"] == t.mapping()
    assert meta["counts"] == {"train": 36, "test": 24, "unknown": 16}
    for method in ("softmax", "dias"):
        ev = json.loads((bench / method / "eval.json").read_text())
        assert ev["num_known"] == 6 and set(ev["posthoc"]) == {"energy", "knn"}
        assert 0.0 <= ev["msp"]["OSCR"] <= ev["msp"]["accuracy"] + 1e-9  # OSCR <= the closed-set CCR
        assert not (bench / method / "checkpoint-last.pt").exists()  # removed once the model is written
    with open(osr_run / "results/osr/tables/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    keys = {(r["benchmark"], r["run"], r["score"], r["ood_set"], r["metric"]) for r in rows}
    assert ("osr-F1-mnist5k", "dias-trial2", "msp", "unknown", "OSCR") in keys
    assert ("osr-F1-mnist5k", "softmax-trial2", "-", "id", "accuracy") in keys
    assert ("osr-F1-mnist5k", "softmax-trial2", "knn", "unknown", "FPR@95") in keys
    table = (osr_run / "results/osr/tables/auroc.md").read_text()
    assert re.search(r"\| F1 \| dias \| [0-9.]+ \(1\) \|", table) and "MNIST-5k (embedded)" in table
    assert (osr_run / "results/osr/figures/oscr_curves.png").stat().st_size > 0
    assert (osr_run / "logs/osr/benchmarks/F1/mnist5k/trial2/dias_train.tsv").is_file()


@pytest.mark.e2e
def test_osr_rerun_is_a_no_op_and_a_new_method_trains_only_itself(osr_run, tmp_path):
    proc = snakemake(osr_run, *TARGETS, "--configfile", str(osr_run / "tiny.yaml"), "--dry-run")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    more = {**TINY, "osr": {**TINY["osr"], "methods": {**TINY["osr"]["methods"], "arpl": {}}}}
    (tmp_path / "more.yaml").write_text(yaml.safe_dump(more))
    plan = snakemake(osr_run, *TARGETS, "--configfile", str(tmp_path / "more.yaml"), "--dry-run").stdout
    trained = re.findall(r"rule osr_train:.*?wildcards: .*?osr_method=(\w+)", plan, flags=re.S)
    assert trained == ["arpl"]


@pytest.mark.e2e
def test_osr_paper_config_plans_every_job_offline(tmp_path):
    config = ROOT / "config/papers/osr_f1.yaml"
    plan = snakemake(tmp_path, "--configfile", str(config), "--dry-run", cores=1).stdout
    counts = dict(re.findall(r"^(osr_\w+|prepare_dataset)\s+(\d+)$", plan, flags=re.M))
    # 6 datasets x 5 trials; x 3 methods; the five catalog sources (CIFAR+N share cifar10/cifar100)
    assert counts == {"osr_data": "30", "osr_train": "90", "osr_eval": "90", "osr_report": "1",
                      "prepare_dataset": "5"}  # fmt: skip
    assert (
        "results/osr_f1/AUROC" not in plan and "results/osr_f1/F1/cifar_plus50/trial4/dias/model.pt" in plan
    )


@pytest.mark.e2e
def test_two_clean_osr_runs_give_identical_bytes(osr_run, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(tmp_path, *TARGETS, "--configfile", str(tmp_path / "tiny.yaml"))
    files = sorted(p.relative_to(osr_run) for p in (osr_run / "results/osr").rglob("*") if p.is_file())
    assert len(files) > 20 and any(p.name == "model.pt" for p in files)
    for rel in files:
        assert (tmp_path / rel).read_bytes() == (osr_run / rel).read_bytes(), rel

"""Every paper config end to end at toy scale on format-exact fakes (``python -m pytest -m smoke``).

Each test is what ``python -m oodflow.smoke config/papers/<x>.yaml`` does: shrink the config, fake every
dataset it needs into a smoke mirror, run the whole Snakemake DAG through the real download, unpack and
parse steps, and check the outputs (:func:`oodflow.smoke.run.check`). On top, each paper's wiring that
the embedded default never touches gets its own assertion (:data:`EXTRA`): the published GAN files, the
CIFAR+10/+50 and Tiny-ImageNet OSR splits, Food-101's list-form decode and its HPO, the multi-label
parsers, PALM/ADAPT's prototype figures, the cross-paper ranking, sweeps and the OOD-draw protocol.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from oodflow import provenance
from oodflow.smoke import run as smoke

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = sorted((ROOT / "config" / "papers").glob("*.yaml"))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _spine(s: smoke.Setup) -> Path:
    return s.workdir / "results" / provenance.folder(s.config, "spine")


def _aoe(s: smoke.Setup) -> None:
    """Published GAN samples (catalog cifar100_gan_<sigma>) feed the outlier pools; every sweep has its
    table; the adversarial table has every eps of every run."""
    out, cfg = _spine(s), s.config
    assert cfg["benchmark"]["gan"]["source"] == "published"
    pools = sorted((out / "data" / "gan").glob("*.json"))
    assert pools, "no GAN outlier pool"
    for sidecar in pools:
        record = json.loads(sidecar.read_text())
        assert record["sources"] == [f"cifar100_gan_{record['sigma']:g}".replace(".", "_")], record
    for sweep in cfg["sweeps"]:
        assert _rows(out / "tables" / f"sweep_{sweep}.csv"), sweep
        assert (out / "figures" / f"sweep_{sweep}.png").stat().st_size > 0
    adv = _rows(out / "tables" / "adversarial.csv")
    eps = {float(e) for e in cfg["adversarial"]["eps"]}
    assert {float(r["eps"]) for r in adv} == eps and {r["run"] for r in adv} >= {"baseline"}


def _osr(s: smoke.Setup) -> None:
    """Every (split family, dataset) of the config has metrics: CIFAR+10/+50 draw their unknowns from
    CIFAR-100, Tiny-ImageNet has 20 known classes; each method under its own protocol score."""
    cfg = s.config["osr"]
    rows = _rows(s.workdir / "results" / cfg["name"] / "tables" / "metrics.csv")
    want = {f"osr-{f}-{d}" for f in cfg["splits"] for d in cfg["datasets"]}
    assert {r["benchmark"] for r in rows} == want
    runs = {(r["benchmark"], r["run"]) for r in rows}
    assert runs == {(b, f"{m}-trial{t}") for b in want for m in cfg["methods"] for t in cfg["trials"]}
    known = {"tinyimagenet": 20, "cifar_plus10": 4, "cifar_plus50": 4}  # else 6 of 10
    for d in cfg["datasets"]:
        for f in cfg["splits"]:
            bench = s.workdir / "results" / cfg["name"] / f / d / f"trial{cfg['trials'][0]}"
            with np.load(bench / "data.npz", allow_pickle=False) as data:
                assert len(np.unique(data["train_y"])) == known.get(d, 6), d
                assert len(data["unknown_x"]) > 0


def _food101(s: smoke.Setup) -> None:
    """Food-101's JPEG list decoded at 64 px for all 101 classes; the Optuna search ran its trials; the
    comparison table has the paper's rows."""
    out, cfg = _spine(s), s.config
    with np.load(out / "data" / "train.npz", allow_pickle=False) as train:
        assert train["x"].shape[1:] == (64, 64, 3) and len(np.unique(train["y"])) == 101
    trials = _rows(out / "hpo" / "energy_ft" / "trials.csv")
    assert len(trials) == cfg["runs"]["energy_ft"]["hpo"]["n_trials"]
    best = json.loads((out / "hpo" / "energy_ft" / "best.json").read_text())
    assert set(best["params"]) == {"lr", "m_in", "m_out"} and best["n_complete"] == len(trials)
    table = (out / "tables" / "compare_energy_ft_vs_baseline.md").read_text()
    assert all(o in table for o in cfg["benchmark"]["ood_sets"])


def _multilabel(s: smoke.Setup) -> None:
    """The multi-label parser's sets (train/test with every label), every run × score × OOD set, the
    tail-ID table, and the OE-set selection measure over its candidates."""
    ml = s.config["multilabel"]
    out = s.workdir / "results" / ml["benchmark"]["name"]
    rows = _rows(out / "tables" / "metrics.csv")
    for run in ml["runs"]:
        for ood in ml["benchmark"]["ood_sets"]:
            assert any(r["run"] == run and r["ood_set"] == ood for r in rows), (run, ood)
    classes = {"voc2012": 20, "coco2014": 80, "nuswide": 81}[ml["benchmark"]["name"]]
    for split in ("train", "test"):
        with np.load(out / "data" / f"{split}.npz", allow_pickle=False) as data:
            y = data["y"]  # multi-hot, every image with at least one label (as the parsers keep them)
            assert y.shape[1] == classes and (y.sum(1) >= 1).all() and y.max() == 1, split
    if ml["oe_selection"] is not None:
        selection = _rows(out / "tables" / "ml_oe_selection.csv")
        assert len(selection) == len(ml["oe_selection"]["candidates"])
    assert (out / "figures" / "ml_tail.png").stat().st_size > 0


def _palm(s: smoke.Setup) -> None:
    out = _spine(s)
    for run, spec in s.config["runs"].items():
        if spec["method"] in ("palm", "adapt"):
            assert (out / "figures" / run / "prototypes.png").stat().st_size > 0


def _crosspaper(s: smoke.Setup) -> None:
    """Every objective of the five papers in the ranking, the GAN pool from the published file."""
    out = _spine(s)
    ranked = {r["run"] for r in _rows(out / "tables" / "cross_paper.csv")}
    assert ranked == set(s.config["runs"])
    _palm(s)


def _cifar(s: smoke.Setup) -> None:
    """The OOD-draw protocol (evaluation.ood_per_id) on the paper benchmark: rerunning with it only
    re-evaluates, and records the seeded subsets."""
    cfg = yaml.safe_load(s.configfile.read_text())
    cfg["evaluation"] = {**cfg["evaluation"], "ood_per_id": 0.5, "draws": 2}
    draws_config = s.workdir / "draws.yaml"
    draws_config.write_text(yaml.safe_dump(cfg))
    before = (_spine(s) / "tables" / "metrics.csv").read_bytes()
    proc = smoke.snakemake(smoke.Setup(s.workdir, draws_config, cfg, s.datasets, s.mirror), capture=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rule train:" not in proc.stdout and "rule extract_features:" not in proc.stdout
    with np.load(_spine(s) / "tables" / "ood_draws.npz", allow_pickle=False) as draws:
        assert set(draws.files) == set(cfg["benchmark"]["ood_sets"])
    assert (_spine(s) / "tables" / "metrics.csv").read_bytes() != before


EXTRA: dict[str, Callable[[smoke.Setup], None]] = {
    "aoe_cifar10": _aoe,
    "aoe_cifar100": _aoe,
    "cifar10": _cifar,
    "cifar100": _cifar,
    "crosspaper_cifar10": _crosspaper,
    "crosspaper_cifar100": _crosspaper,
    "edge_coco2014": _multilabel,
    "edge_nuswide": _multilabel,
    "edge_voc2012": _multilabel,
    "food101": _food101,
    "osr_auroc": _osr,
    "osr_f1": _osr,
    "osr_tinyimagenet_800": _osr,
    "palm_cifar100": _palm,
}


def test_every_paper_config_has_a_smoke_assertion():
    assert set(EXTRA) == {p.stem for p in PAPER_CONFIGS}


@pytest.fixture(scope="session")
def shared_resources(tmp_path_factory) -> Path:
    """One resources/ folder for every smoke: each fake dataset is downloaded and prepared once."""
    return tmp_path_factory.mktemp("smoke-resources")


@pytest.mark.smoke
@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=[p.stem for p in PAPER_CONFIGS])
def test_paper_config_smoke(config, tmp_path, shared_resources):
    s = smoke.setup(config, tmp_path / "work", resources=shared_resources)
    proc = smoke.snakemake(s, capture=True, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert smoke.check(s) == []
    EXTRA[config.stem](s)

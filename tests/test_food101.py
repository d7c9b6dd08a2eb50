"""The food101 catalog benchmark: Food-101 at 64 px and its eight OOD sets, derived from fake catalog data.

The last test runs the paper config's report (comparison table and figures) end to end through
Snakemake on a tiny fake of every dataset it reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fakes_food101 import FOOD_CLASSES, prepare_catalog, write_food101_images
from oodflow import steps
from oodflow.config import ConfigError, load, validate
from oodflow.data import BENCHMARKS
from oodflow.data.benchmarks import FOOD101, model_input
from oodflow.data.catalog import DATASETS
from oodflow.data.stored import load_set, manifest_path
from oodflow.io import read_json
from workflow_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "papers" / "food101.yaml"


def food_config(**bench) -> dict:
    raw = yaml.safe_load(PAPER.read_text())
    raw["benchmark"].update({"val_per_class": 1, **bench})
    return validate(raw)


def test_paper_config_is_the_documented_setup():
    cfg = load(PAPER)
    assert cfg["benchmark"]["name"] == "food101" and cfg["benchmark"]["image_format"] == "rgb64"
    assert cfg["benchmark"]["ood_sets"] == list(FOOD101.ood_sets)
    assert {"flowers102", "dtd", "oxford_pets", "svhn", "fashion_mnist"} <= set(FOOD101.ood_sets)
    assert len(FOOD101.ood_sets) == 8
    base, ft = cfg["runs"]["baseline"], cfg["runs"]["energy_ft"]
    assert base["model"] == ft["model"] == "mobilenet_v3_large" and base["method"] == "ce"
    assert ft["method"] == "energy_ft" and ft["init_from"] == "baseline"
    assert (ft["epochs"], ft["lr"], ft["method_args"]["lam"], ft["method_args"]["aux_batch_size"]) == (
        10,
        0.001,
        0.1,
        256,
    )
    assert set(ft["hpo"]["params"]) == {"lr", "m_in", "m_out"}  # the paper's Optuna search
    assert cfg["report"]["comparisons"][0]["scores"] == ["energy", "cores"]


def test_every_benchmark_reads_existing_catalog_splits():
    for name in BENCHMARKS.names():
        bench = BENCHMARKS.get(name)
        if bench.source is None:
            continue
        assert {"train", "test"} <= set(DATASETS.get(bench.source).splits), name
        for ood, src in bench.ood_sources.items():
            assert src.split in DATASETS.get(src.dataset).splits, (name, ood)
            assert src.group in ("near", "far")
        assert set(bench.ood_sources) == set(bench.ood_sets)
        assert bench.aux_source.dataset not in {s.dataset for s in bench.ood_sources.values()}
        assert bench.image_formats == (f"rgb{bench.image_size}",)


@pytest.mark.parametrize("threads", [1, 3])
def test_id_splits_are_centre_crops_resized_to_64_px(tmp_path, threads):
    root = tmp_path / "work"
    colours = write_food101_images(tmp_path / "check")  # the same images, for their colours
    folder = prepare_catalog(root, "food101")
    out = {s: str(tmp_path / f"{s}.npz") for s in ("train", "val", "test")}
    steps.build_id(food_config(), out, str(folder / "prepared"), str(folder / "raw"), threads=threads)
    sizes = {}
    for split, source in (("train", "train"), ("val", "train"), ("test", "test")):
        x, y = load_set(out[split])
        sizes[split] = len(y)
        assert x.shape[1:] == (64, 64, 3) and x.dtype == np.uint8
        rows = (folder / "prepared" / f"{source}.tsv").read_text().splitlines()[1:]
        indices = read_json(manifest_path(out[split]))["source_indices"]
        indices = range(len(rows)) if indices == "all" else indices
        for img, label, i in zip(x, y, indices, strict=True):
            path, row_label = rows[i].split("\t")
            assert int(row_label) == label and path.split("/")[2] == FOOD_CLASSES[label]
            # the side bands are cropped away: every pixel carries the source's centre colour
            diff = np.abs(img.astype(int) - np.array(colours[source][path]))
            assert diff.max() <= 4, (split, path, diff.max())
    assert sizes == {"train": 9, "val": 3, "test": 6}
    _, yv = load_set(out["val"])
    assert sorted(yv.tolist()) == [0, 1, 2]  # one per class


def test_id_splits_do_not_depend_on_the_decoder_threads(tmp_path):
    folder = prepare_catalog(tmp_path, "food101")
    files = {}
    for threads in (1, 4):
        out = {s: str(tmp_path / f"{s}-{threads}.npz") for s in ("train", "val", "test")}
        steps.build_id(food_config(), out, str(folder / "prepared"), str(folder / "raw"), threads=threads)
        files[threads] = [Path(out[s]).read_bytes() for s in ("train", "val", "test")]
    assert files[1] == files[4]


def test_the_eight_ood_sets_become_rgb_at_64_px(tmp_path):
    cfg = food_config()
    for name in FOOD101.ood_sets:
        src = FOOD101.ood_sources[name]
        folder = tmp_path / "resources" / "datasets" / src.dataset
        if not folder.exists():
            prepare_catalog(tmp_path, src.dataset)
        out = tmp_path / f"{name}.npz"
        steps.build_ood(cfg, name, str(out), str(folder / "prepared"), str(folder / "raw"), threads=2)
        x, y = load_set(out)
        expected = read_json(folder / "prepared" / "prepared.json")["splits"][src.split]["count"]
        assert x.shape == (expected, 64, 64, 3) and np.all(y == -1), name
        assert read_json(manifest_path(out))["source"] == f"{src.dataset}/{src.split}"
        v = model_input(x, FOOD101, "rgb64")
        assert v.shape == (expected, 3, 64, 64)
        if name in ("mnist", "fashion_mnist"):  # grey sets: the channel is repeated
            assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2])


def test_model_input_and_config_refuse_the_wrong_size():
    with pytest.raises(ValueError, match=r"expected \(N, 64, 64, 3\) images, got \(2, 32, 32, 3\)"):
        model_input(np.zeros((2, 32, 32, 3), np.uint8), FOOD101, "rgb64")
    with pytest.raises(ConfigError, match="benchmark.image_format: benchmark 'food101' is served as rgb64"):
        food_config(image_format="rgb32")


# ------------------------------------------------------------------------------------ end to end
#: A near-OOD list-form set, the derived Places365 subset and a grey far-OOD set (all eight are
#: derived in test_the_eight_ood_sets_become_rgb_at_64_px; fewer sets keep the DAG short).
TINY_OOD = ["dtd", "places365", "fashion_mnist"]


def tiny_food_config(tmp_path: Path) -> Path:
    """The paper config shrunk: same benchmark, runs, scores and comparison; a tiny model, 1 epoch."""
    raw = yaml.safe_load(PAPER.read_text())
    raw["device"] = "cpu"
    raw["benchmark"].update(val_per_class=1, ood_sets=TINY_OOD)
    for run in raw["runs"].values():
        run.update(model="mobilenet_v3_small", model_args={"width": 0.25}, epochs=1, batch_size=8)
    raw["runs"]["energy_ft"]["method_args"]["aux_batch_size"] = 4
    raw["runs"]["energy_ft"]["hpo"].update(n_trials=2, epochs=1, holdout=4)
    raw["plots"] = {"dpi": 50, "bins": 10}
    path = tmp_path / "food101_tiny.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.e2e
def test_paper_report_runs_end_to_end_on_fake_data(tmp_path):
    work = tmp_path / "work"
    for name in FOOD101.datasets(TINY_OOD, aux=True):
        prepare_catalog(work, name)
    config = tiny_food_config(tmp_path)
    out = "results/food101"
    targets = [
        f"{out}/tables/compare_energy_ft_vs_baseline.md",
        f"{out}/tables/compare_energy_ft_vs_baseline.tex",
        f"{out}/figures/compare_energy_ft_vs_baseline/hist_energy.png",
        f"{out}/figures/compare_energy_ft_vs_baseline/hist_cores.png",
    ]
    # The fake datasets have no Snakemake records: only mtimes may decide (as after `dvc pull`).
    mtime = ("--rerun-triggers", "mtime")
    proc = snakemake(work, *targets, *mtime, "--configfile", str(config), cores=2)
    assert "download_dataset" not in proc.stdout and "prepare_dataset" not in proc.stdout
    metrics = pd.read_csv(work / out / "tables" / "metrics.csv")
    table = pd.read_csv(work / out / "tables" / "compare_energy_ft_vs_baseline.csv")
    # the table is the metrics table re-laid out: every FPR@95 per OOD set, in percent
    for row in table[table.ood_set.isin(TINY_OOD)].itertuples():
        for role, run in (("baseline", "baseline"), ("candidate", "energy_ft")):
            hit = metrics[
                (metrics.run == run)
                & (metrics.score == row.score)
                & (metrics.ood_set == row.ood_set)
                & (metrics.metric == "FPR@95")
            ]
            assert getattr(row, role) == pytest.approx(100 * hit.value.iloc[0], abs=1e-3)
    per_score = [*TINY_OOD, "near-OOD mean", "far-OOD mean", "mean"]
    assert list(table.ood_set) == ["ID accuracy", *per_score, *per_score]  # energy, then cores
    assert list(table.score) == ["-", *["energy"] * 6, *["cores"] * 6]
    assert list(table.group.fillna("")) == ["", *["near", "near", "far", "near", "far", ""] * 2]
    md = (work / out / "tables" / "compare_energy_ft_vs_baseline.md").read_text()
    assert "| dtd | near |" in md and "| 25.32 | 18.40 | +6.92 |" in md  # reported beside ours
    tex = (work / out / "tables" / "compare_energy_ft_vs_baseline.tex").read_text()
    assert tex.count("\\\\") == len(table) + 1 and "\\begin{tabular}" in tex
    png = (work / out / "figures" / "compare_energy_ft_vs_baseline" / "hist_energy.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    # the whole paper config resolves on this data: nothing left but the other report outputs
    plan = snakemake(work, *mtime, "--configfile", str(config), "--dry-run", cores=1).stdout
    jobs = set(re.findall(r"^rule (\w+):", plan, flags=re.M))
    other = {"tables", "figures", "data_manifest", "data_samples", "cross_paper", "scorecard", "claims",
             "provenance"}  # fmt: skip
    other |= {"headline_spine"}
    assert jobs <= {"all", *other}, jobs

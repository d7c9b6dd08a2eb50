"""GAN outliers through Snakemake: train_gan -> sample_gan -> gan_pool -> train (an `oe` run), the
sigma wildcard, and the published files fetched from a local HTTP mirror (pinned sha256)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from oodflow import gan, steps
from oodflow.checkpoint import load
from oodflow.config import validate
from oodflow.data.stored import load_set
from oodflow.io import save_npz
from test_dataset_rules import mirror  # noqa: F401  (the local HTTP fixture)
from workflow_runner import snakemake

pytestmark = pytest.mark.e2e
OUT = Path("results/mnist5k")
GAN = {"epochs": 1, "width": 4, "latent_dim": 8, "batch_size": 32, "samples": 60}


def tiny_config(sigmas=(2.0,)) -> dict:
    runs = {
        f"oe_gan{i}": {
            "model": "small_cnn",
            "model_args": {"width": 0.25},
            "method": "oe",
            "method_args": {"aux_batch_size": 16},
            "outliers": {"source": "gan", "sigma": sigma, "count": 50},
            "epochs": 1,
            "batch_size": 32,
        }
        for i, sigma in enumerate(sigmas)
    }
    return {
        "seed": 0,
        "device": "cpu",
        "benchmark": {
            "name": "mnist5k",
            "ood_sets": ["uniform"],
            "train_per_class": 10,
            "val_per_class": 2,
            "test_per_class": 2,
            "ood_size": 10,
            "aux_size": 10,
            "gan": GAN,
        },
        "runs": runs,
        "scores": {"msp": {}},
    }


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _jobs(plan: str) -> list[str]:
    return re.findall(r"^(?:local)?rule (\w+):", plan, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """Two clean runs of the same tiny GAN-OE target."""
    base = tmp_path_factory.mktemp("gan")
    config = _write(base / "gan.yaml", tiny_config())
    target = str(OUT / "runs" / "oe_gan0" / "model.pt")
    works = []
    for name in ("a", "b"):
        work = base / name
        work.mkdir()
        snakemake(work, target, "--configfile", str(config))
        works.append(work)
    return works, config, target


def test_oe_run_trains_on_the_gan_pool(gan_runs):
    (work, _), _, _ = gan_runs
    samples = gan.load_gan_samples(work / OUT / "gan" / "samples-2.0.npz", image_shape=(1, 28, 28))
    assert samples.shape == (GAN["samples"], 1, 28, 28)
    assert len(np.unique(samples.reshape(len(samples), -1), axis=0)) > 1  # sigma 2: not one image
    x, y = load_set(work / OUT / "data" / "gan" / "2.0.npz")
    np.testing.assert_array_equal(x, samples[:, 0])
    assert (y == -1).all()
    payload = load(work / OUT / "runs" / "oe_gan0" / "model.pt")
    assert payload["config"]["run"]["outliers"] == {"source": "gan", "sigma": 2.0, "count": 50}
    assert payload["config"]["benchmark"]["gan"]["source"] == "trained"
    assert not (work / OUT / "data" / "aux.npz").exists()  # the aux pool was never needed
    log = (work / "logs/mnist5k/gan/train.log").read_text()
    assert "trained the GAN on 100 images" in log


def test_gan_outputs_are_byte_identical_across_clean_runs(gan_runs):
    (a, b), _, _ = gan_runs
    for rel in ("gan/generator.pt", "gan/samples-2.0.npz", "data/gan/2.0.npz", "runs/oe_gan0/model.pt"):
        assert (a / OUT / rel).read_bytes() == (b / OUT / rel).read_bytes(), rel


def test_noop_rerun_and_sigma_wildcard(gan_runs, tmp_path):
    (work, _), config, target = gan_runs
    proc = snakemake(work, target, "--configfile", str(config))
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # a second sigma samples the same generator again; nothing else of the first run reruns
    more = _write(tmp_path / "more.yaml", tiny_config(sigmas=(2.0, 0.5)))
    plan = snakemake(
        work, str(OUT / "runs" / "oe_gan1" / "model.pt"), "--configfile", str(more), "--dry-run"
    ).stdout
    assert sorted(_jobs(plan)) == ["gan_pool", "sample_gan", "train"]
    assert "samples-0.5.npz" in plan and "sigma=0.5" in plan
    # a changed GAN retrains it and everything downstream
    changed = tiny_config()
    changed["benchmark"]["gan"] = {**GAN, "width": 5}
    plan = snakemake(
        work, target, "--configfile", str(_write(tmp_path / "w.yaml", changed)), "--dry-run"
    ).stdout
    assert {"train_gan", "sample_gan", "gan_pool", "train"} <= set(_jobs(plan))


def test_published_samples_fetched_pinned_checked_and_pooled(mirror, tmp_path):  # noqa: F811
    folder, base = mirror
    (folder / "cifar100_gan_3").mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    save_npz(folder / "cifar100_gan_3" / "samples-3.0.npz", x=x, y=np.arange(12))
    pins = tmp_path / "checksums.json"
    env = {"OODFLOW_MIRRORS": base, "OODFLOW_MIRRORS_ONLY": "1", "OODFLOW_CHECKSUMS": str(pins)}
    cfg = tiny_config()
    cfg["benchmark"] = {
        "name": "cifar10",
        "image_format": "rgb32",
        "ood_sets": ["svhn"],
        "gan": {"source": "published"},
    }
    cfg["runs"]["oe_gan0"]["outliers"]["sigma"] = 3.0
    config = _write(tmp_path / "pub.yaml", cfg)
    target = "resources/datasets/cifar100_gan_3/prepared"
    work = tmp_path / "work"
    work.mkdir()

    proc = snakemake(work, target, "--configfile", str(config), cores=1, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cifar100_gan_3/samples-3.0.npz" in pins.read_text()  # pinned on the first download
    valid = validate(cfg)
    assert "cifar100_gan_3" in steps.catalog_datasets(valid)  # DVC-tracked with the config's datasets
    steps.gan_pool(valid, "3.0", str(tmp_path / "pool.npz"), prepared=str(work / target))
    px, py = load_set(tmp_path / "pool.npz")
    np.testing.assert_array_equal(px, x.transpose(0, 2, 3, 1))
    assert (py == -1).all()

    # the served file changes: the pinned sha256 refuses it, nothing is left behind
    save_npz(folder / "cifar100_gan_3" / "samples-3.0.npz", x=x[:5])
    work2 = tmp_path / "work2"
    work2.mkdir()
    proc = snakemake(work2, target, "--configfile", str(config), cores=1, env=env, check=False)
    assert proc.returncode != 0
    log = (work2 / "logs/datasets/cifar100_gan_3/download_samples-3.0.npz.log").read_text()
    assert "sha256" in log and "cifar100_gan_3" in log
    assert not (work2 / "resources/datasets/cifar100_gan_3/downloads/samples-3.0.npz").exists()

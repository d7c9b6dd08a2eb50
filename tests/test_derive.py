"""Catalog benchmarks: stored sets derived from prepared catalog datasets (fakes), deterministically."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import write_cifar10, write_mnist
from fakes_large import write_dtd
from oodflow import steps
from oodflow.config import ConfigError, validate
from oodflow.data.benchmarks import CIFAR10, model_input
from oodflow.data.sources.large import parse_dtd
from oodflow.data.sources.small import parse_cifar10, parse_mnist
from oodflow.data.stored import load_set, manifest_path
from oodflow.io import read_json


@pytest.fixture
def prepared(tmp_path):
    raw, prep = tmp_path / "raw", tmp_path / "prep"
    write_cifar10(raw / "cifar10", per_batch=6, n_test=5)
    parse_cifar10(raw / "cifar10", prep / "cifar10")
    write_mnist(raw / "mnist", n_train=2, n_test=4)
    parse_mnist(raw / "mnist", prep / "mnist")
    write_dtd(raw / "dtd")
    parse_dtd(raw / "dtd", prep / "dtd")
    return raw, prep


def cifar_config(**bench):
    return validate(
        {
            "benchmark": {
                "name": "cifar10",
                "image_format": "rgb32",
                "ood_sets": ["mnist", "textures"],
                "train_per_class": None,
                "val_per_class": 1,
                "test_per_class": None,
                "ood_size": None,
                **bench,
            },
            "runs": {"r": {"model": "resnet18", "method": "ce"}},
            "scores": {"msp": {}},
        }
    )


def test_id_splits_hold_out_validation_and_record_indices(prepared, tmp_path):
    _, prep = prepared
    out = {s: str(tmp_path / "a" / f"{s}.npz") for s in ("train", "val", "test")}
    steps.build_id(cifar_config(), out, str(prep / "cifar10"))
    (xt, yt), (xv, yv), (xs, ys) = (load_set(out[s]) for s in ("train", "val", "test"))
    assert xt.shape[1:] == (32, 32, 3) and len(xt) + len(xv) == 30 and len(xs) == 5
    assert sorted(yv.tolist()) == sorted(set(yt.tolist()) | set(yv.tolist()))  # one per present class
    train_idx = read_json(manifest_path(out["train"]))["source_indices"]
    val_idx = read_json(manifest_path(out["val"]))["source_indices"]
    assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == 30
    assert read_json(manifest_path(out["test"]))["source_indices"] == "all"

    again = {s: str(tmp_path / "b" / f"{s}.npz") for s in ("train", "val", "test")}
    steps.build_id(cifar_config(), again, str(prep / "cifar10"))
    for s in out:
        assert open(out[s], "rb").read() == open(again[s], "rb").read()


def test_ood_sets_become_rgb_at_the_benchmark_size(prepared, tmp_path):
    raw, prep = prepared
    steps.build_ood(
        cifar_config(), "mnist", str(tmp_path / "mnist.npz"), str(prep / "mnist"), str(raw / "mnist")
    )
    steps.build_ood(
        cifar_config(), "textures", str(tmp_path / "tex.npz"), str(prep / "dtd"), str(raw / "dtd")
    )
    for name, count in (("mnist", 4), ("tex", 9)):
        x, y = load_set(tmp_path / f"{name}.npz")
        assert x.shape == (count, 32, 32, 3) and np.all(y == -1)
    steps.build_ood(
        cifar_config(ood_size=2), "textures", str(tmp_path / "sub.npz"), str(prep / "dtd"), str(raw / "dtd")
    )
    sub = read_json(tmp_path / "sub.json")
    assert len(sub["source_indices"]) == 2 and sub["source"] == "dtd/all"
    x, _ = load_set(tmp_path / "mnist.npz")
    v = model_input(x, CIFAR10, "rgb32")
    assert v.shape == (4, 3, 32, 32) and v.dtype == np.float32
    for c in range(3):
        expected = (x[..., c] / 255.0 - CIFAR10.mean[c]) / CIFAR10.std[c]
        np.testing.assert_allclose(v[:, c], expected, rtol=1e-5, atol=1e-5)


def test_catalog_benchmark_config_errors():
    with pytest.raises(
        ConfigError, match="benchmark.ood_sets.0: unknown OOD set 'faces' of benchmark 'cifar10'"
    ):
        cifar_config(ood_sets=["faces"])
    with pytest.raises(ConfigError, match="benchmark.image_format"):
        cifar_config(image_format="gray28")
    with pytest.raises(ConfigError, match="benchmark.ood_size: the embedded benchmark needs a number"):
        validate(
            {
                "benchmark": {"name": "mnist5k", "ood_size": None},
                "runs": {"r": {"model": "small_cnn", "method": "ce"}},
                "scores": {"msp": {}},
            }
        )


def test_embedded_benchmark_offers_exactly_the_registered_ood_sets():
    from oodflow.data import OOD_SETS
    from oodflow.data.benchmarks import MNIST5K

    assert sorted(MNIST5K.ood_sets) == OOD_SETS.names()

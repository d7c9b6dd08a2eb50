"""Parsers of the small-image catalog datasets, each run on a tiny fake in the exact upstream layout."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fakes
from oodflow.data.catalog import DatasetSpec
from oodflow.data.sources import small
from oodflow.io import FormatError, load_npz, read_json


def _check(name: str, raw: Path, out: Path, expected: dict, **parser_args) -> dict:
    """Run the parser of ``name`` and compare every split with the fake's expectation."""
    spec = small.SPECS[name]
    module, _, attr = spec.parser.partition(":")
    info = getattr(importlib.import_module(module), attr)(raw, out, **parser_args)
    assert info == read_json(out / "prepared.json")
    assert info["dataset"] == name and info["form"] == "array"
    assert set(info["splits"]) == set(spec.splits) == set(expected["splits"])
    for split, (x, y) in expected["splits"].items():
        arrays = load_npz(out / f"{split}.npz", required={"x": 4, "y": 1})
        assert arrays["x"].dtype == np.uint8 and arrays["y"].dtype == np.int64
        np.testing.assert_array_equal(arrays["x"], x)
        np.testing.assert_array_equal(arrays["y"], y)
        assert info["splits"][split] == {"count": len(x), "shape": list(x.shape[1:])}
    assert info["classes"] == expected.get("classes", info["classes"])
    return info


# ------------------------------------------------------------------------------------- the specs
def test_specs_are_complete():
    expected = {"cifar10", "cifar100", "svhn", "svhn_extra", "mnist", "fashion_mnist", "tinyimagenet",
                "lsun_crop", "lsun_resize", "tinyimagenet_crop", "tinyimagenet_resize", "isun",
                "tinyimages_300k", "cifar100_gan_50", "cifar100_gan_2"}  # fmt: skip
    assert set(small.SPECS) == expected
    for name, spec in small.SPECS.items():
        assert isinstance(spec, DatasetSpec) and spec.name == name and spec.form == "array"
        assert getattr(small, name.upper()) is spec
        assert spec.parser == f"oodflow.data.sources.small:parse_{name}"
        assert callable(getattr(small, f"parse_{name}"))
        assert spec.resources and spec.homepage and spec.licence and spec.approx_size and spec.notes
        for res in spec.resources:
            assert res.urls and all(u.startswith(("http://", "https://")) for u in res.urls)
            assert res.md5 is None or re.fullmatch(r"[0-9a-f]{32}", res.md5)
        assert len({r.filename for r in spec.resources}) == len(spec.resources)
    assert small.MNIST.resources[0].urls[0].startswith("https://ossci-datasets.s3.amazonaws.com/mnist/")
    assert small.ISUN.resources[0].urls[-1].startswith("https://people.eecs.berkeley.edu/")


# ------------------------------------------------------------------------------ the parsers work
def test_cifar10(tmp_path):
    expected = fakes.write_cifar10(tmp_path / "raw")
    info = _check("cifar10", tmp_path / "raw", tmp_path / "out", expected)
    assert info["splits"]["train"]["count"] == 5 and info["classes"][0] == "airplane"


def test_cifar100_uses_fine_labels(tmp_path):
    expected = fakes.write_cifar100(tmp_path / "raw")
    info = _check("cifar100", tmp_path / "raw", tmp_path / "out", expected)
    assert len(info["classes"]) == 100


def test_svhn_maps_label_10_to_0_and_selects_the_first_per_label(tmp_path):
    expected = fakes.write_svhn(tmp_path / "raw")
    _check("svhn", tmp_path / "raw", tmp_path / "out", expected, selected_per_class=1)
    test_y = load_npz(tmp_path / "out" / "test.npz")["y"]
    assert test_y[0] == 0 and test_y.max() == 9  # the file's label 10 is the digit 0
    selected = load_npz(tmp_path / "out" / "test_selected.npz")["y"]
    assert selected.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_svhn_extra_is_its_own_dataset(tmp_path):
    expected = fakes.write_svhn_extra(tmp_path / "raw")
    info = _check("svhn_extra", tmp_path / "raw", tmp_path / "out", expected)
    assert info["splits"]["extra"]["count"] == 2
    assert "extra_32x32.mat" not in {r.filename for r in small.SVHN.resources}


def test_svhn_selection_rule():
    y = np.array([0, 1, 1, 2, 1, 0, 2, 0, *range(3, 10), *range(3, 10)])
    keep = small.svhn_selected_indices(y, per_class=2)
    assert keep[:2].tolist() == [1, 2] and keep[2:4].tolist() == [3, 6] and keep[-2:].tolist() == [0, 5]
    assert len(keep) == 20
    with pytest.raises(FormatError, match="digit 1 has 3 images"):
        small.svhn_selected_indices(y, per_class=4)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_sets(tmp_path, name, gz):
    expected = fakes.write_mnist(tmp_path / "raw", gz=gz, name=name)
    info = _check(name, tmp_path / "raw", tmp_path / "out", expected)
    assert info["splits"]["train"]["shape"] == [28, 28, 1] and len(info["classes"]) == 10


def test_tinyimagenet(tmp_path):
    expected = fakes.write_tinyimagenet(tmp_path / "raw")
    info = _check("tinyimagenet", tmp_path / "raw", tmp_path / "out", expected)
    assert info["classes"] == sorted(fakes.TINY_WNIDS) and info["splits"]["val"]["shape"] == [64, 64, 3]


def test_tinyimagenet_zip_unpacks_to_the_parsed_layout(tmp_path):
    expected = fakes.write_tinyimagenet_zip(tmp_path / "tiny-imagenet-200.zip", tmp_path / "work")
    with zipfile.ZipFile(tmp_path / "tiny-imagenet-200.zip") as zf:
        assert all(n.startswith("tiny-imagenet-200/") for n in zf.namelist())
        zf.extractall(tmp_path / "raw")
    _check("tinyimagenet", tmp_path / "raw", tmp_path / "out", expected)


@pytest.mark.parametrize("name", sorted(fakes.ODIN_LAYOUTS))
def test_odin_sets(tmp_path, name):
    expected = fakes.write_odin(tmp_path / "raw", name)
    info = _check(name, tmp_path / "raw", tmp_path / "out", expected)
    assert info["classes"] == [] and info["splits"]["test"]["shape"] == [32, 32, 3]
    assert (load_npz(tmp_path / "out" / "test.npz")["y"] == -1).all()


def test_tinyimages_300k(tmp_path):
    expected = fakes.write_300k(tmp_path / "raw")
    _check("tinyimages_300k", tmp_path / "raw", tmp_path / "out", expected)


@pytest.mark.parametrize(
    ("name", "sigma", "channels_first", "dtype"),
    [("cifar100_gan_2", "2.0", True, np.uint8), ("cifar100_gan_50", "50.0", False, np.float32)],
)
def test_gan_outliers(tmp_path, name, sigma, channels_first, dtype):
    expected = fakes.write_gan(tmp_path / "raw", sigma, channels_first=channels_first, dtype=dtype)
    _check(name, tmp_path / "raw", tmp_path / "out", expected)


# ------------------------------------------------------------------------ unsafe or wrong input
def test_restricted_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    fakes.write_cifar10(tmp_path / "raw")
    path = tmp_path / "raw" / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(fakes.py2_pickle({b"data": Evil(), b"labels": [0]}))  # a tampered batch
    assert b"system" in path.read_bytes()
    refused = r"data_batch_1: unsafe or broken pickle \(refuses to load the global '(posix|os|nt)\.system'\)"
    with pytest.raises(FormatError, match=refused):
        small.load_pickle(path)
    with pytest.raises(FormatError, match=refused):
        small.parse_cifar10(tmp_path / "raw", tmp_path / "out")
    assert not marker.exists()


def test_cifar_missing_batch_is_named(tmp_path):
    fakes.write_cifar10(tmp_path / "raw")
    (tmp_path / "raw" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FormatError, match="data_batch_3: missing file"):
        small.parse_cifar10(tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out" / "prepared.json").exists()


def test_cifar_wrong_top_folder(tmp_path):
    fakes.write_cifar10(tmp_path / "raw")
    (tmp_path / "raw" / "cifar-10-batches-py").rename(tmp_path / "raw" / "cifar10")
    with pytest.raises(FormatError, match="cifar-10-batches-py: missing folder"):
        small.parse_cifar10(tmp_path / "raw", tmp_path / "out")


def test_cifar_wrong_data_shape(tmp_path):
    fakes.write_cifar100(tmp_path / "raw")
    path = tmp_path / "raw" / "cifar-100-python" / "test"
    path.write_bytes(fakes.py2_pickle({b"data": np.zeros((1, 1024), np.uint8), b"fine_labels": [0]}))
    with pytest.raises(FormatError, match=r"cifar-100-python/test: 'data' must be uint8 \(N, 3072\)"):
        small.parse_cifar100(tmp_path / "raw", tmp_path / "out")


def test_idx_wrong_magic_is_named(tmp_path):
    fakes.write_mnist(tmp_path / "raw")
    labels = tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz"
    shutil.copy(tmp_path / "raw" / "t10k-images-idx3-ubyte.gz", labels)
    with pytest.raises(FormatError, match="t10k-labels-idx1-ubyte.gz: idx magic number 2051, expected 2049"):
        small.parse_mnist(tmp_path / "raw", tmp_path / "out")


def test_idx_truncated(tmp_path):
    fakes.write_mnist(tmp_path / "raw", gz=False)
    path = tmp_path / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(FormatError, match="train-images-idx3-ubyte: .* data bytes"):
        small.parse_mnist(tmp_path / "raw", tmp_path / "out")


def test_idx_missing_file(tmp_path):
    fakes.write_mnist(tmp_path / "raw")
    (tmp_path / "raw" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FormatError, match="train-labels-idx1-ubyte.gz: missing file"):
        small.parse_fashion_mnist(tmp_path / "raw", tmp_path / "out")


def test_idx_not_gzip(tmp_path):
    fakes.write_mnist(tmp_path / "raw")
    (tmp_path / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(FormatError, match="train-images-idx3-ubyte.gz: not a readable gzip"):
        small.parse_mnist(tmp_path / "raw", tmp_path / "out")


def test_svhn_bad_labels_and_shape(tmp_path):
    from scipy.io import savemat

    fakes.write_svhn(tmp_path / "raw")
    path = tmp_path / "raw" / "train_32x32.mat"
    savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [1]], np.uint8)})
    with pytest.raises(FormatError, match="train_32x32.mat: 'y' must hold labels 1..10"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out")
    savemat(path, {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.array([[1], [1]], np.uint8)})
    with pytest.raises(FormatError, match=r"train_32x32.mat: 'X' must be uint8 \(32, 32, 3, N\)"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out")
    path.write_bytes(b"garbage")
    with pytest.raises(FormatError, match="train_32x32.mat: not a readable MATLAB"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out")


def test_svhn_selection_needs_enough_images(tmp_path):
    fakes.write_svhn(tmp_path / "raw")  # one to three images per label, the real rule needs 1000
    with pytest.raises(FormatError, match="test_32x32.mat: digit 1 has 2 images, the selection needs 1000"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out")
    with pytest.raises(FormatError, match="digit 1 has 2 images, the selection needs 3"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out", selected_per_class=3)
    with pytest.raises(ValueError, match="selected_per_class must be a positive integer"):
        small.parse_svhn(tmp_path / "raw", tmp_path / "out", selected_per_class=0)


def test_tinyimagenet_unknown_val_class(tmp_path):
    fakes.write_tinyimagenet(tmp_path / "raw")
    ann = tmp_path / "raw" / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace(fakes.TINY_WNIDS[0], "n00000000"))
    with pytest.raises(FormatError, match=r"val_annotations.txt:2: expected"):
        small.parse_tinyimagenet(tmp_path / "raw", tmp_path / "out")


def test_tinyimagenet_missing_class_folder(tmp_path):
    fakes.write_tinyimagenet(tmp_path / "raw")
    shutil.rmtree(tmp_path / "raw" / "tiny-imagenet-200" / "train" / fakes.TINY_WNIDS[1])
    with pytest.raises(FormatError, match=r"train: class folders differ from wnids.txt"):
        small.parse_tinyimagenet(tmp_path / "raw", tmp_path / "out")


def test_tinyimagenet_wrong_image_size(tmp_path):
    from PIL import Image

    fakes.write_tinyimagenet(tmp_path / "raw")
    path = tmp_path / "raw" / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG"
    Image.new("RGB", (32, 32)).save(path, format="JPEG")
    with pytest.raises(FormatError, match="val_1.JPEG: image is 32x32 px, expected 64x64"):
        small.parse_tinyimagenet(tmp_path / "raw", tmp_path / "out")


def test_odin_wrong_folder_stray_file_and_small_image(tmp_path):
    from PIL import Image

    fakes.write_odin(tmp_path / "raw", "isun")
    with pytest.raises(FormatError, match="LSUN/test: missing folder"):
        small.parse_lsun_crop(tmp_path / "raw", tmp_path / "out")
    folder = tmp_path / "raw" / "iSUN" / "iSUN_patches"
    (folder / ".DS_Store").write_bytes(b"")  # hidden files are skipped
    (folder / "notes.txt").write_text("?")
    with pytest.raises(FormatError, match="notes.txt: unexpected entry"):
        small.parse_isun(tmp_path / "raw", tmp_path / "out")
    (folder / "notes.txt").unlink()
    Image.new("RGB", (30, 32)).save(folder / "5.jpeg", format="JPEG")
    with pytest.raises(FormatError, match="5.jpeg: image is 30x32 px, expected 32x32"):
        small.parse_isun(tmp_path / "raw", tmp_path / "out")
    (folder / "5.jpeg").write_bytes(b"not a jpeg")
    with pytest.raises(FormatError, match="5.jpeg: not a readable image"):
        small.parse_isun(tmp_path / "raw", tmp_path / "out")


def test_300k_wrong_shape_and_pickled_content(tmp_path):
    path = tmp_path / "300K_random_images.npy"
    np.save(path, np.zeros((2, 32, 32, 1), np.uint8))
    with pytest.raises(FormatError, match=r"300K_random_images.npy: expected uint8 \(N, 32, 32, 3\)"):
        small.parse_tinyimages_300k(tmp_path, tmp_path / "out")
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="300K_random_images.npy: not a plain .npy"):
        small.parse_tinyimages_300k(tmp_path, tmp_path / "out")


def test_gan_wrong_keys_shape_and_values(tmp_path):
    path = tmp_path / "samples-2.0.npz"
    np.savez(path, images=np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(FormatError, match="samples-2.0.npz: missing array 'x'"):
        small.parse_cifar100_gan_2(tmp_path, tmp_path / "out")
    np.savez(path, x=np.zeros((2, 3, 28, 28), np.uint8), y=np.zeros(2))
    with pytest.raises(FormatError, match=r"samples-2.0.npz: 'x' must be \(N, 3, 32, 32\)"):
        small.parse_cifar100_gan_2(tmp_path, tmp_path / "out")
    np.savez(path, x=np.full((2, 3, 32, 32), 0.5, np.float32), y=np.zeros(2))
    with pytest.raises(FormatError, match="samples-2.0.npz: 'x' must hold integer pixel values"):
        small.parse_cifar100_gan_2(tmp_path, tmp_path / "out")
    with pytest.raises(FormatError, match="samples-50.0.npz: missing file"):
        small.parse_cifar100_gan_50(tmp_path, tmp_path / "out")

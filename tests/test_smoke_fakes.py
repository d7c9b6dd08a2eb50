"""The smoke fakes of every catalog dataset: written as upstream ships them, unpacked and parsed by the
real :func:`oodflow.steps.prepare`, with the sizes the config shrinker relies on, byte-reproducible.

The contract checked here (independently of :mod:`oodflow.smoke.fakes.sizes`): the upstream class
counts; at least 4 images per class in training splits and 3 in val/test splits; every multi-label
class at least twice in every split, 1-3 labels per image; at least 40 images in OOD-only sets; 256 in
300K Random Images and 64 in a GAN samples file; images that differ from one another.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from oodflow import steps
from oodflow.data.catalog import DATASETS
from oodflow.io import load_npz
from oodflow.smoke.fakes import formats, names, write_downloads, write_user_files

GANS = ["cifar100_gan_0", "cifar100_gan_2_5"]
#: Upstream class counts of the labelled datasets (0: OOD-only or unlabelled).
CLASSES = {
    "cifar10": 10, "cifar100": 100, "svhn": 10, "svhn_extra": 10, "mnist": 10, "fashion_mnist": 10,
    "tinyimagenet": 200, "food101": 101, "flowers102": 102, "oxford_pets": 37, "dtd": 47,
    "places365_val": 365, "voc2012": 20, "coco2014": 80, "nuswide": 81,
}  # fmt: skip
MULTILABEL = {"voc2012", "coco2014", "nuswide"}
TRAIN_SPLITS = {"train", "trainval", "extra"}
#: The parser options a smoke must set (paper-scale subset sizes larger than a fake).
PARSER_ARGS = {"svhn": {"selected_per_class": 3}, "places365_val": {"ood_size": 40}}
#: Derived splits that are drawn from another split, with their own size rule.
DERIVED = {("svhn", "test_selected"), ("places365_val", "ood10k"), ("dtd", "all")}


def _labels(prepared: Path, split: str, form: str) -> list[tuple[int, ...]]:
    if form == "array":
        return [(int(v),) for v in load_npz(prepared / f"{split}.npz")["y"]]
    header, *rows = (prepared / f"{split}.tsv").read_text().splitlines()
    return [tuple(int(v) for v in row.split("\t")[1].split()) for row in rows]


def _prepare(name: str, root: Path) -> tuple[list[Path], dict]:
    paths = write_downloads(name, root / "mirror" / name)
    write_user_files(name, root / "ds")
    steps.prepare(name, [str(p) for p in paths], str(root / "ds" / "raw"), str(root / "ds" / "prepared"),
                  PARSER_ARGS.get(name))  # fmt: skip
    return paths, json.loads((root / "ds" / "prepared" / "prepared.json").read_text())


@pytest.mark.parametrize("name", [*DATASETS.names(), *GANS])
def test_fake_prepares_with_the_contract_sizes(name, tmp_path):
    spec = DATASETS.get(name)
    paths, info = _prepare(name, tmp_path)
    assert paths == [tmp_path / "mirror" / name / r.filename for r in spec.resources]
    assert info["dataset"] == name and set(info["splits"]) == set(spec.splits)
    n_classes = CLASSES.get(name, 0)
    assert len(info["classes"]) == n_classes
    prepared = tmp_path / "ds" / "prepared"
    for split, meta in info["splits"].items():
        labels = _labels(prepared, split, spec.form)
        assert len(labels) == meta["count"]
        if (name, split) in DERIVED:
            assert meta["count"] >= 40 if name != "svhn" else meta["count"] == 30
            continue
        if name in GANS or name.startswith("cifar100_gan_"):
            assert meta["count"] == 64
        elif name == "tinyimages_300k":
            assert meta["count"] == 256
        elif n_classes == 0:
            assert meta["count"] >= 40 and set(labels) == {(-1,)}
        elif name in MULTILABEL:
            assert all(1 <= len(lab) <= 3 for lab in labels), split
            counts = Counter(c for lab in labels for c in lab)
            assert set(counts) == set(range(n_classes)) and min(counts.values()) >= 2, split
        else:
            counts = Counter(lab[0] for lab in labels)
            assert set(counts) == set(range(n_classes)), split
            assert min(counts.values()) >= (4 if split in TRAIN_SPLITS else 3), split


@pytest.mark.parametrize(
    "name", ["cifar10", "tinyimagenet", "food101", "coco2014", "nuswide", "cifar100_gan_2"]
)
def test_fakes_are_byte_reproducible_and_seeded(name, tmp_path):
    first = [p.read_bytes() for p in write_downloads(name, tmp_path / "a")]
    again = [p.read_bytes() for p in write_downloads(name, tmp_path / "b")]
    other = [p.read_bytes() for p in write_downloads(name, tmp_path / "c", seed=1)]
    assert first == again and first != other  # (a fixed list, e.g. ConceptsList.zip, may not change)
    users = [write_user_files(name, tmp_path / d) for d in ("ua", "ub")]
    for a, b in zip(*users):
        files = sorted(p.relative_to(a) for p in a.rglob("*"))
        assert files and files == sorted(p.relative_to(b) for p in b.rglob("*"))
        assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files if (a / f).is_file())


def test_every_catalog_name_is_fakeable_and_unknown_names_are_listed(tmp_path):
    assert names() == DATASETS.names()
    with pytest.raises(KeyError, match="no fake for dataset 'cifar11'; valid names: cifar10, cifar100"):
        write_downloads("cifar11", tmp_path)
    with pytest.raises(KeyError, match="cifar11"):
        write_user_files("cifar11", tmp_path)
    assert write_user_files("cifar10", tmp_path) == [] and not any(tmp_path.iterdir())


def test_images_vary_per_image_and_per_class(tmp_path):
    _prepare("cifar100", tmp_path)
    data = load_npz(tmp_path / "ds" / "prepared" / "train.npz")
    x, y = data["x"].astype(np.float64), data["y"]
    assert len({img.tobytes() for img in data["x"]}) == len(x)  # no two images alike
    means = np.stack([x[y == c].mean(axis=(0, 1, 2)) for c in range(100)])  # per-class mean colour
    assert means.std(axis=0).min() > 5  # classes differ in colour, not only in noise


def test_list_images_are_small_jpegs_of_varied_sides(tmp_path):
    _, info = _prepare("food101", tmp_path)
    raw = tmp_path / "ds" / "raw"
    header, *rows = (tmp_path / "ds" / "prepared" / "train.tsv").read_text().splitlines()
    sizes = {formats.decode_image((raw / row.split("\t")[0]).read_bytes()).shape[:2] for row in rows[:40]}
    assert len(sizes) > 10 and all(40 <= s <= 72 for hw in sizes for s in hw)


def test_gan_samples_are_channels_first_uint8(tmp_path):
    (path,) = write_downloads("cifar100_gan_2", tmp_path)
    assert path.name == "samples-2.0.npz"
    with np.load(path, allow_pickle=False) as npz:
        assert npz["x"].shape == (64, 3, 32, 32) and npz["x"].dtype == np.uint8
        assert npz["y"].dtype == np.int64 and len(npz["y"]) == 64

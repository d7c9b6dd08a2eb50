"""Open-set splits of DIAS (``split.py`` of wjun0830/Difficulty-Aware-Simulator@533cef7c), read from
``splits.json``.

``splits.json`` (package data) transcribes, verbatim, both split dictionaries of that ``split.py``:
``splits_F1`` (the default) and ``splits_AUROC``, with one list per trial
index. As in DIAS and ARPL, trial ``i`` (0..4) uses the list at index ``4 - i``::

    known   = splits[family][key][4 - i]
    unknown = label space - known                      (mnist, svhn, cifar10, tinyimagenet)
    unknown = splits[family]["cifar100-<N>"][4 - i]    (CIFAR+N: CIFAR-100 *test* classes)

Known labels are remapped to ``0..K-1`` **in the listed order** (``known[j] -> j``), as the
reference's ``Filter`` datasets do (``known.index(label)``); the mapping is recorded with the data.

This module imports neither torch nor numpy: the workflow reads it while planning the DAG.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SPLITS_PATH = Path(__file__).with_name("splits.json")
FAMILIES = ("F1", "AUROC")
TRIALS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class OSRDataset:
    """One OSR benchmark dataset.

    Attributes:
        name: our name (a workflow wildcard).
        title: the paper's column title.
        split_key: its key in the split dictionaries.
        label_space: number of classes of the source the known classes come from.
        known_source / unknown_source: catalog dataset names (``None``: the embedded mnist5k).
        train_split / test_split: prepared splits of the known source used for training and testing
            (Tiny-ImageNet tests on its ``val`` split).
        unknown_key: for CIFAR+N, the key of the unknown CIFAR-100 class lists (else ``None``: the
            unknowns are the other classes of the known source's test split).
        augment: random crop (pad 4) + horizontal flip when training (MNIST: none, as the reference).
    """

    name: str
    title: str
    split_key: str
    label_space: int
    known_source: str | None
    unknown_source: str | None
    train_split: str = "train"
    test_split: str = "test"
    unknown_key: str | None = None
    augment: bool = True


#: In the paper's column order, then the embedded one.
DATASETS: dict[str, OSRDataset] = {
    d.name: d
    for d in (
        OSRDataset("mnist", "MNIST", "mnist", 10, "mnist", "mnist", augment=False),
        OSRDataset("svhn", "SVHN", "svhn", 10, "svhn", "svhn"),
        OSRDataset("cifar10", "CIFAR10", "cifar10", 10, "cifar10", "cifar10"),
        OSRDataset(
            "cifar_plus10", "CIFAR+10", "cifar100", 10, "cifar10", "cifar100", unknown_key="cifar100-10"
        ),
        OSRDataset(
            "cifar_plus50", "CIFAR+50", "cifar100", 10, "cifar10", "cifar100", unknown_key="cifar100-50"
        ),
        OSRDataset(
            "tinyimagenet",
            "TinyImageNet",
            "tiny_imagenet",
            200,
            "tinyimagenet",
            "tinyimagenet",
            test_split="val",
        ),  # fmt: skip
        OSRDataset("mnist5k", "MNIST-5k (embedded)", "mnist", 10, None, None, augment=False),
    )
}
#: The paper's table columns.
PAPER_DATASETS = ("mnist", "svhn", "cifar10", "cifar_plus10", "cifar_plus50", "tinyimagenet")


@dataclass(frozen=True)
class Task:
    """The classes of one OSR benchmark (dataset, split family, trial)."""

    dataset: str
    family: str
    trial: int
    known: tuple[int, ...]  # source labels, in the listed order; known[j] becomes label j
    unknown: tuple[int, ...]  # source labels of the unknown source (sorted when derived)

    @property
    def num_known(self) -> int:
        return len(self.known)

    def mapping(self) -> dict[str, int]:
        """Source label -> training label (JSON keys are strings)."""
        return {str(c): j for j, c in enumerate(self.known)}


@cache
def split_tables() -> dict[str, dict[str, list[list[int]]]]:
    """``{"F1": splits_F1, "AUROC": splits_AUROC}`` as stored in ``splits.json``."""
    raw = json.loads(SPLITS_PATH.read_text())
    return {family: raw[f"splits_{family}"] for family in FAMILIES}


def dataset(name: str) -> OSRDataset:
    if name not in DATASETS:
        raise KeyError(f"unknown OSR dataset '{name}'; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def task(name: str, family: str, trial: int) -> Task:
    """Known and unknown classes of ``name`` in split family ``family`` for trial ``trial``."""
    ds = dataset(name)
    if family not in FAMILIES:
        raise KeyError(f"unknown OSR split family '{family}'; valid names: {', '.join(FAMILIES)}")
    if trial not in TRIALS:
        raise ValueError(f"OSR trial must be one of {TRIALS}, got {trial!r}")
    table = split_tables()[family]
    known = tuple(int(c) for c in table[ds.split_key][len(TRIALS) - 1 - trial])
    if ds.unknown_key is not None:
        unknown = tuple(int(c) for c in table[ds.unknown_key][len(TRIALS) - 1 - trial])
    else:
        unknown = tuple(c for c in range(ds.label_space) if c not in known)
    return Task(name, family, trial, known, unknown)

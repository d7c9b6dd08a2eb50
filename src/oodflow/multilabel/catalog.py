"""Stored sets of the catalog multi-label benchmarks (VOC 2012, COCO 2014, NUS-WIDE).

The prepared list form (``oodflow.data.catalog``) holds ``<split>.tsv`` rows ``path\\tlabels`` with
space-separated label indices. ID images are decoded from the raw folder, centre-cropped to a square
and resized to ``image_size`` (256 px: EDGE's deterministic ``Resize((256, 256))`` differs only in
that it does not crop); OOD and OE sets go through the spine's derivation (:mod:`oodflow.data.derive`).
Every set is decoded chunk by chunk while it is written (:class:`oodflow.data.derive.Images`), so
building never holds a whole set. Subsets are seeded by ``(seed, benchmark/set)`` and recorded in
the sidecars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data import derive
from oodflow.data.benchmarks import Source
from oodflow.io import FormatError


def read_multilabel_split(
    prepared_dir: str | Path, split: str, num_labels: int
) -> tuple[list[str], np.ndarray]:
    """Image paths and uint8 multi-hot targets ``(N, C)`` of a prepared list-form split."""
    path = Path(prepared_dir) / f"{split}.tsv"
    if not path.is_file():
        raise FormatError(f"{path}: missing (prepared multi-label split '{split}')")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != "path\tlabel":
        raise FormatError(f"{path}: expected the header 'path<TAB>label'")
    paths, y = [], np.zeros((len(lines) - 1, num_labels), dtype=np.uint8)
    for i, line in enumerate(lines[1:]):
        rel, _, labels = line.partition("\t")
        idx = [int(v) for v in labels.split()]
        if any(not 0 <= v < num_labels for v in idx):
            raise FormatError(f"{path}: line {i + 2} has a label outside 0..{num_labels - 1}")
        paths.append(rel)
        y[i, idx] = 1
    return paths, y


def _subset(n: int, count: int | None, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if count is None or count >= n else np.sort(rng.choice(n, size=count, replace=False))


def id_splits(bench, prepared: str, raw: str | None, seed: int, b: dict[str, Any], threads: int = 1):
    """train / val (a seeded hold-out of ``val_size`` training images) / test, each (x, y, details)."""
    if raw is None:
        raise ValueError(f"{bench.name}: list-form images need the raw folder")
    paths, y = read_multilabel_split(prepared, bench.train_split, bench.num_labels)
    rng = np.random.default_rng(derive._rng(seed, f"{bench.name}/val").integers(2**63))
    perm = rng.permutation(len(paths))
    val_idx = np.sort(perm[: b["val_size"]])
    rest = np.sort(perm[b["val_size"] :])
    train_idx = rest[_subset(len(rest), b["train_size"], derive._rng(seed, f"{bench.name}/train"))]
    test_paths, test_y = read_multilabel_split(prepared, bench.test_split, bench.num_labels)
    test_idx = _subset(len(test_paths), b["test_size"], derive._rng(seed, f"{bench.name}/test"))
    out = {}
    size = bench.image_size
    for split, split_paths, split_y, idx, src in (
        ("train", paths, y, train_idx, bench.train_split),
        ("val", paths, y, val_idx, bench.train_split),
        ("test", test_paths, test_y, test_idx, bench.test_split),
    ):
        names = [split_paths[i] for i in idx]
        x = derive.Images(
            len(names),
            (size, size, 3),
            lambda pos, names=names: derive._load_images(Path(raw), [names[i] for i in pos], size, threads),
        )
        details = {
            "source": f"{bench.source}/{src}",
            "source_indices": derive._indices(idx, len(split_paths)),
        }
        out[split] = (x, split_y[idx], details)
    return out


def outliers(bench, source: Source, key: str, prepared: str, raw: str | None, seed: int, count: int | None,
             threads: int = 1) -> tuple[derive.Images, dict[str, Any]]:  # fmt: skip
    """A seeded subset of ``count`` images of ``source`` as uint8 RGB at the benchmark's size,
    decoded (resized) chunk by chunk as they are written."""
    rng = derive._rng(seed, f"{bench.name}/{key}")
    x, _, details = derive.read_split_lazy(
        source, prepared, raw, bench.image_size, lambda labels: _subset(len(labels), count, rng), threads
    )
    side = bench.image_size
    return x.map(lambda chunk: derive._to_rgb(chunk, side), (side, side, 3)), details

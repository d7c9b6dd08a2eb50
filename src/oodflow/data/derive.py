"""Derive a catalog benchmark's stored sets from prepared catalog datasets, deterministically.

Every subset is drawn with a generator seeded by ``(seed, set name)`` and its source indices are
recorded in the set's sidecar, so a derived set is reproducible and auditable:

* ID: the prepared ``train`` split gives ``val`` (``val_per_class`` images per class, a stratified
  hold-out) and ``train`` (the rest, optionally capped per class); ``test`` is the prepared test split
  (optionally capped per class).
* OOD and auxiliary sets: the source split, optionally a seeded subset of ``count`` images; every
  image becomes uint8 RGB of the benchmark's size (grey repeated; other sizes resized bilinearly
  after a centre crop to a square), so all sets reach the network identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data.benchmarks import Benchmark, Source
from oodflow.io import FormatError, load_npz, read_json
from oodflow.seeding import derive_seed

Derived = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, name))


def _per_class(y: np.ndarray, count: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``count`` random samples of each class (all when ``count`` is None)."""
    picked = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if count is not None:
            if count > len(members):
                raise ValueError(
                    f"class {label} has {len(members)} samples, fewer than the {count} asked for"
                )
            members = rng.choice(members, size=count, replace=False)
        picked.append(members)
    return np.sort(np.concatenate(picked))


def _subset(n: int, count: int | None, rng: np.random.Generator) -> np.ndarray:
    if count is None or count >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=count, replace=False))


def _indices(idx: np.ndarray, n: int) -> list[int] | str:
    """The recorded provenance of a subset: its sorted source indices, or "all"."""
    return "all" if len(idx) == n else [int(i) for i in idx]


def _prepared(prepared_dir: str | Path, split: str) -> tuple[dict, Path]:
    prepared_dir = Path(prepared_dir)
    meta = read_json(prepared_dir / "prepared.json")
    if split not in meta.get("splits", {}):
        raise FormatError(f"{prepared_dir}: no split '{split}' (has: {', '.join(meta.get('splits', {}))})")
    return meta, prepared_dir


def _square_resize(img, size: int):
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return img if side == size else img.resize((size, size), Image.Resampling.BILINEAR)


def _to_rgb(x: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, H, W[, C])`` -> ``(N, size, size, 3)``."""
    from PIL import Image

    if x.ndim == 3:
        x = x[..., None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[1:3] == (size, size):
        return np.ascontiguousarray(x)
    return np.stack([np.asarray(_square_resize(Image.fromarray(img), size)) for img in x])


def _read_split(
    source: Source,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    size: int | None,
    indices_of: Any = None,
) -> Derived:
    """Images and labels of a prepared split (array or list form), optionally a subset."""
    meta, prepared_dir = _prepared(prepared_dir, source.split)
    if meta.get("form") == "array":
        arrays = load_npz(prepared_dir / f"{source.split}.npz", required={"x": None, "y": 1})
        x, y = arrays["x"], arrays["y"]
        n = len(y)
        idx = indices_of(y) if indices_of else np.arange(n)
        x, y = x[idx], y[idx]
    else:
        from PIL import Image

        lines = (prepared_dir / f"{source.split}.tsv").read_text().splitlines()[1:]
        rows = [line.split("\t") for line in lines]
        labels = np.array([int(r[1]) if r[1].lstrip("-").isdigit() else -1 for r in rows], dtype=np.int64)
        n = len(rows)
        idx = indices_of(labels) if indices_of else np.arange(n)
        if raw_dir is None:
            raise ValueError(f"{source.dataset}: list-form data needs its raw folder")
        images = []
        for i in idx:
            with Image.open(Path(raw_dir) / rows[i][0]) as img:
                images.append(np.asarray(_square_resize(img.convert("RGB"), size or 32)))
        x, y = np.stack(images), labels[idx]
    details = {"source": f"{source.dataset}/{source.split}", "source_indices": _indices(idx, n)}
    return x, y.astype(np.int64), details


def id_splits(
    bench: Benchmark,
    prepared_dir: str | Path,
    seed: int,
    train_per_class: int | None,
    val_per_class: int,
    test_per_class: int | None,
) -> dict[str, Derived]:
    """train / val (stratified hold-out of the prepared train split) / test of a catalog benchmark."""
    train_src, test_src = Source(bench.source, "train"), Source(bench.source, "test")
    x, y, _ = _read_split(train_src, prepared_dir, None, None)
    rng = _rng(seed, f"{bench.name}/val")
    val_idx = _per_class(y, val_per_class, rng)
    rest = np.setdiff1d(np.arange(len(y)), val_idx)
    train_idx = rest[_per_class(y[rest], train_per_class, _rng(seed, f"{bench.name}/train"))]
    out = {}
    for split, idx in (("train", train_idx), ("val", val_idx)):
        out[split] = (
            x[idx],
            y[idx],
            {"source": f"{bench.source}/train", "source_indices": _indices(idx, len(y))},
        )
    test_rng = _rng(seed, f"{bench.name}/test")
    out["test"] = _read_split(
        test_src, prepared_dir, None, None, lambda labels: _per_class(labels, test_per_class, test_rng)
    )
    return out


def ood_set(
    bench: Benchmark,
    name: str,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    seed: int,
    count: int | None,
) -> Derived:
    """OOD test set ``name`` of a catalog benchmark: labels -1, RGB at the benchmark's size."""
    return _outliers(
        bench, bench.ood_sources[name], f"{bench.name}/ood/{name}", prepared_dir, raw_dir, seed, count
    )


def aux_pool(
    bench: Benchmark, prepared_dir: str | Path, raw_dir: str | Path | None, seed: int, count: int | None
) -> Derived:
    """The auxiliary outlier pool of a catalog benchmark (e.g. 300K random images for OE)."""
    if bench.aux_source is None:
        raise ValueError(f"benchmark '{bench.name}' has no auxiliary outlier pool")
    return _outliers(bench, bench.aux_source, f"{bench.name}/aux", prepared_dir, raw_dir, seed, count)


def _outliers(bench, source, key, prepared_dir, raw_dir, seed, count) -> Derived:
    rng = _rng(seed, key)
    x, _, details = _read_split(
        source, prepared_dir, raw_dir, bench.image_size, lambda labels: _subset(len(labels), count, rng)
    )
    return _to_rgb(x, bench.image_size), np.full(len(x), -1, dtype=np.int64), details

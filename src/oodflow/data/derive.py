"""Derive a catalog benchmark's stored sets from prepared catalog datasets, deterministically.

Every subset is drawn with a generator seeded by ``(seed, set name)`` and its source indices are
recorded in the set's sidecar, so a derived set is reproducible and auditable:

* ID: the prepared ``train`` split gives ``val`` (``val_per_class`` images per class, a stratified
  hold-out) and ``train`` (the rest, optionally capped per class); ``test`` is the prepared test split
  (optionally capped per class). List-form ID data (Food-101) are decoded and resized like the
  OOD sets below; only the images a split keeps are read.
* OOD and auxiliary sets: the source split, optionally a seeded subset of ``count`` images; every
  image becomes uint8 RGB of the benchmark's size (grey repeated; other sizes resized bilinearly
  after a centre crop to a square), so all sets reach the network identically.

Images are read (decoded, resized) chunk by chunk as a set is written (:class:`Images`,
:func:`oodflow.data.stored.write_set`), so building a set never holds it whole (Food-101 at
224 px, the 300K-image pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data.benchmarks import Benchmark, Source
from oodflow.io import FormatError, load_npz, read_json
from oodflow.seeding import derive_seed

Derived = tuple[np.ndarray, np.ndarray, dict[str, Any]]
#: A derived set whose images are read when written (:class:`Images`).
Lazy = tuple["Images", np.ndarray, dict[str, Any]]


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


def _load_images(raw_dir: Path, paths: list[str], size: int, threads: int = 1) -> np.ndarray:
    """Decode list-form images to uint8 RGB ``(N, size, size, 3)``, centre-cropped and resized.

    ``threads`` > 1 decodes in a thread pool (PIL releases the GIL while decoding and resizing);
    results keep the order of ``paths``, so the output does not depend on it.
    """
    from PIL import Image

    def one(rel: str) -> np.ndarray:
        with Image.open(raw_dir / rel) as img:
            return np.asarray(_square_resize(img.convert("RGB"), size))

    if threads > 1 and len(paths) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            images = list(pool.map(one, paths, chunksize=64))
    else:
        images = [one(rel) for rel in paths]
    if not images:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack(images)


#: Images decoded (or converted) at a time when a set is built chunk by chunk (:class:`Images`):
#: 512 images of 256 px RGB are 100 MB.
CHUNK_IMAGES = 512


class Images:
    """The uint8 images of a derived set, produced in chunks instead of all at once.

    ``read(positions)`` returns the images at ``positions`` (``0..count-1``, in that order); a set
    larger than memory is written with :meth:`chunks` (:class:`oodflow.io.Streamed`), peak memory one
    chunk. :meth:`array` materialises it (the same bytes as the chunks concatenated).
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, count: int, image_shape: tuple[int, ...], read: Any):
        self.count, self.image_shape, self.read = int(count), tuple(image_shape), read

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.count, *self.image_shape)

    def __len__(self) -> int:
        return self.count

    def chunks(self, size: int = CHUNK_IMAGES):
        for i in range(0, self.count, size):
            yield self.read(np.arange(i, min(i + size, self.count)))

    def array(self) -> np.ndarray:
        return self.read(np.arange(self.count))

    def streamed(self, size: int = CHUNK_IMAGES):
        from oodflow.io import Streamed

        return Streamed(self.shape, np.uint8, self.chunks(size))

    def map(self, fn: Any, image_shape: tuple[int, ...]) -> Images:
        """The images after ``fn`` (a per-image transform applied to each chunk)."""
        return Images(self.count, image_shape, lambda pos: fn(self.read(pos)))


def _split_reader(
    source: Source,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    size: int | None,
    threads: int = 1,
) -> tuple[np.ndarray, tuple[int, ...], Any]:
    """``(labels, image shape, read)`` of a prepared split, nothing decoded yet: ``read(indices)``
    returns the images at those source indices (array form: read from the uncompressed ``.npz``
    without loading the rest; list form: decoded and resized to ``size`` px)."""
    from oodflow.io import npz_members

    meta, prepared_dir = _prepared(prepared_dir, source.split)
    if meta.get("form") == "array":
        path = prepared_dir / f"{source.split}.npz"
        try:
            members = npz_members(path)
            if "x" not in members or "y" not in members:
                raise FormatError(f"{path}: missing array 'x' or 'y' (has: {', '.join(sorted(members))})")
            x, y = members["x"], members["y"].block(0, len(members["y"]))
            read = x.take
        except FormatError as err:
            if "compressed" not in str(err):
                raise
            arrays = load_npz(path, required={"x": None, "y": 1})  # a compressed npz: loaded whole
            x, y = arrays["x"], arrays["y"]
            read = lambda idx: x[idx]  # noqa: E731
        if y.ndim != 1:
            raise FormatError(f"{path}: array 'y' has {y.ndim} dimensions, expected 1")
        return y, tuple(x.shape[1:]), read
    lines = (prepared_dir / f"{source.split}.tsv").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in lines]
    labels = np.array([int(r[1]) if r[1].lstrip("-").isdigit() else -1 for r in rows], dtype=np.int64)
    if raw_dir is None:
        raise ValueError(f"{source.dataset}: list-form data needs its raw folder")
    if size is None:
        raise ValueError(f"{source.dataset}: list-form data needs the benchmark's image size")
    return (
        labels,
        (size, size, 3),
        lambda idx: _load_images(Path(raw_dir), [rows[i][0] for i in idx], size, threads),
    )


def read_split_lazy(
    source: Source,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    size: int | None,
    indices_of: Any = None,
    threads: int = 1,
) -> tuple[Images, np.ndarray, dict[str, Any]]:
    """:func:`_read_split` with the images as :class:`Images` (read when its chunks are)."""
    labels, shape, read = _split_reader(source, prepared_dir, raw_dir, size, threads)
    n = len(labels)
    idx = indices_of(labels) if indices_of else np.arange(n)
    details = {"source": f"{source.dataset}/{source.split}", "source_indices": _indices(idx, n)}
    return Images(len(idx), shape, lambda pos: read(idx[pos])), labels[idx].astype(np.int64), details


def _read_split(
    source: Source,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    size: int | None,
    indices_of: Any = None,
    threads: int = 1,
) -> Derived:
    """Images and labels of a prepared split (array or list form), optionally a subset.

    ``indices_of(labels)`` returns the sorted source indices to keep (all when omitted); list-form
    images are read only for those, at ``size`` px.
    """
    images, y, details = read_split_lazy(source, prepared_dir, raw_dir, size, indices_of, threads)
    return images.array(), y, details


def id_splits(
    bench: Benchmark,
    prepared_dir: str | Path,
    seed: int,
    train_per_class: int | None,
    val_per_class: int,
    test_per_class: int | None,
    raw_dir: str | Path | None = None,
    threads: int = 1,
) -> dict[str, Lazy]:
    """train / val (stratified hold-out of the prepared train split) / test of a catalog benchmark.

    ``raw_dir`` is needed for list-form ID data, whose images are read from it at the benchmark's
    size (``threads`` decoders); array-form data are used at their stored size.
    """
    train_src, test_src = Source(bench.source, "train"), Source(bench.source, "test")
    picked: dict[str, Any] = {}

    def hold_out(y: np.ndarray) -> np.ndarray:
        val_idx = _per_class(y, val_per_class, _rng(seed, f"{bench.name}/val"))
        rest = np.setdiff1d(np.arange(len(y)), val_idx)
        train_idx = rest[_per_class(y[rest], train_per_class, _rng(seed, f"{bench.name}/train"))]
        picked.update(train=train_idx, val=val_idx, n=len(y))
        return np.union1d(train_idx, val_idx)

    labels, shape, read = _split_reader(train_src, prepared_dir, raw_dir, bench.image_size, threads)
    hold_out(labels)
    out = {}
    for split in ("train", "val"):
        idx = picked[split]
        out[split] = (
            Images(len(idx), shape, lambda pos, idx=idx: read(idx[pos])),
            labels[idx].astype(np.int64),
            {"source": f"{bench.source}/train", "source_indices": _indices(idx, picked["n"])},
        )
    test_rng = _rng(seed, f"{bench.name}/test")
    out["test"] = read_split_lazy(
        test_src,
        prepared_dir,
        raw_dir,
        bench.image_size,
        lambda labels: _per_class(labels, test_per_class, test_rng),
        threads,
    )
    return out


def ood_set(
    bench: Benchmark,
    name: str,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    seed: int,
    count: int | None,
    threads: int = 1,
) -> Lazy:
    """OOD test set ``name`` of a catalog benchmark: labels -1, RGB at the benchmark's size."""
    return _outliers(
        bench,
        bench.ood_sources[name],
        f"{bench.name}/ood/{name}",
        prepared_dir,
        raw_dir,
        seed,
        count,
        threads,
    )


def aux_pool(
    bench: Benchmark,
    prepared_dir: str | Path,
    raw_dir: str | Path | None,
    seed: int,
    count: int | None,
    threads: int = 1,
) -> Lazy:
    """The auxiliary outlier pool of a catalog benchmark (e.g. 300K random images for OE)."""
    if bench.aux_source is None:
        raise ValueError(f"benchmark '{bench.name}' has no auxiliary outlier pool")
    return _outliers(
        bench, bench.aux_source, f"{bench.name}/aux", prepared_dir, raw_dir, seed, count, threads
    )


def _outliers(bench, source, key, prepared_dir, raw_dir, seed, count, threads=1) -> Lazy:
    rng = _rng(seed, key)
    x, _, details = read_split_lazy(
        source,
        prepared_dir,
        raw_dir,
        bench.image_size,
        lambda labels: _subset(len(labels), count, rng),
        threads,
    )
    side = bench.image_size
    rgb = x.map(lambda chunk: _to_rgb(chunk, side), (side, side, 3))
    return rgb, np.full(len(x), -1, dtype=np.int64), details

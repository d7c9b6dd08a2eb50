"""Stored multi-label sets read per batch: uint8 on disk, model-ready float32 only batch by batch.

A stored set (``x`` uint8 ``(N, H, W[, C])``, ``y`` uint8 multi-hot) is an uncompressed ``.npz``
(:func:`oodflow.io.save_npz`), so its images are read row by row from the file
(:class:`oodflow.io.NpyMember`) and converted by :func:`model_input` per batch: a job holds a few
batches, not the set (EDGE's 300K outlier pool is 59 GB at 256 px, 236 GB as float32). The
conversion is elementwise, so a batch equals the same rows of the whole set converted at once,
bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import FormatError, NpyMember, npz_members


def model_input(x: np.ndarray, bench) -> np.ndarray:
    """Stored uint8 images -> float32 ``(N, C, H, W)``, ``(v / 255 - mean) / std`` per channel."""
    x = np.asarray(x)
    side, ch = bench.image_size, bench.channels
    if (
        x.dtype != np.uint8
        or x.shape[1:3] != (side, side)
        or (x.ndim == 4 and x.shape[3] != ch)
        or (x.ndim == 3 and ch != 1)
    ):
        raise ValueError(
            f"{bench.name}: expected uint8 images of {side}x{side}x{ch}, got {x.dtype} {x.shape}"
        )
    v = x.astype(np.float32) / np.float32(255.0)
    v = v[:, None] if x.ndim == 3 else v.transpose(0, 3, 1, 2)
    mean = np.asarray(bench.mean, np.float32)[None, :, None, None]
    std = np.asarray(bench.std, np.float32)[None, :, None, None]
    return np.ascontiguousarray((v - mean) / std, dtype=np.float32)


class StoredImages:
    """The images of a stored set as a lazily converted float32 tensor ``(N, C, H, W)``.

    Indexing with a slice, an index tensor/array or an int reads those rows from the file and
    returns :func:`model_input` of them as a ``torch.Tensor``; ``len`` and ``shape`` are the set's.
    Picklable (a data-loader worker opens the file itself). ``x`` may also be an in-memory uint8
    array (tests, small sets).
    """

    def __init__(self, x: NpyMember | np.ndarray, bench, where: str = "images"):
        self.x, self.bench = x, bench
        n, *image = x.shape
        model_input(np.zeros((0, *image), x.dtype), bench)  # the stored shape and dtype, checked once
        self.shape = (n, bench.channels, bench.image_size, bench.image_size)
        self.where = where

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, key: Any) -> np.ndarray:
        """The stored uint8 rows of ``key`` (slice, index sequence/tensor or int)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self.x.block(start, stop) if isinstance(self.x, NpyMember) else self.x[start:stop]
            key = np.arange(start, stop, step)
        scalar = np.ndim(key) == 0
        idx = np.asarray(key, dtype=np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + len(self), idx)
        out = self.x.take(idx) if isinstance(self.x, NpyMember) else self.x[idx]
        return out[0] if scalar else out

    def __getitem__(self, key: Any):
        import torch

        rows = self.rows(key)
        if np.ndim(key) == 0 and not isinstance(key, slice):
            return torch.from_numpy(model_input(rows[None], self.bench)[0])
        return torch.from_numpy(model_input(rows, self.bench))


def load_stored(path: str | Path, bench) -> tuple[StoredImages, np.ndarray]:
    """``(images, y)`` of a stored set: the images read per batch (:class:`StoredImages`), the
    uint8 multi-hot targets ``(N, C)`` loaded; checks shapes against ``bench``."""
    members = npz_members(path)
    for key, ndim in (("x", None), ("y", 2)):
        if key not in members:
            raise FormatError(f"{path}: missing array '{key}' (has: {', '.join(sorted(members))})")
        if ndim is not None and len(members[key].shape) != ndim:
            raise FormatError(
                f"{path}: array '{key}' has {len(members[key].shape)} dimensions, expected {ndim}"
            )
    y = members["y"].block(0, len(members["y"]))
    if y.shape[1] != bench.num_labels:
        raise ValueError(f"{path}: {y.shape[1]} labels, benchmark '{bench.name}' has {bench.num_labels}")
    if len(y) != len(members["x"]):
        raise FormatError(f"{path}: {len(members['x'])} images but {len(y)} targets")
    return StoredImages(members["x"], bench, str(path)), y

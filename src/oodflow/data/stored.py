"""The stored form of every benchmark set: what the workflow's data rules write and its loaders read.

A set is an uncompressed, byte-stable ``.npz`` holding exactly ``x`` (uint8 images, ``(N, H, W)``
grey or ``(N, H, W, C)`` channels last) and ``y`` (int64 ``(N,)``: class ``0..K-1`` for ID samples,
``-1`` for OOD and auxiliary samples), plus a JSON sidecar ``<name>.json`` with its count, shape,
label counts, sources, seed, any provenance details (e.g. the indices of a seeded subset) and the
sha256 of the ``.npz``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.io import FormatError, load_npz, save_npz, sha256_file, write_json


def validate_set(
    x: Any, y: Any, where: str, *, image_shape: tuple[int, ...] | None = None, num_classes: int | None = None
) -> None:
    """Raise :class:`FormatError` naming ``where`` unless ``(x, y)`` is a valid stored set."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise FormatError(f"{where}: x must be a uint8 array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim not in (3, 4):
        raise FormatError(f"{where}: x must have shape (N, H, W) or (N, H, W, C), got {x.shape}")
    if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
        dims = ", ".join(map(str, image_shape))
        raise FormatError(f"{where}: x must have shape (N, {dims}), got {x.shape}")
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
        raise FormatError(
            f"{where}: y must be a 1-D int64 array, got {getattr(y, 'dtype', type(y))} "
            f"with shape {getattr(y, 'shape', None)}"
        )
    if len(x) != len(y):
        raise FormatError(f"{where}: x has {len(x)} images but y has {len(y)} labels")
    top = num_classes - 1 if num_classes is not None else None
    if len(y) and (y.min() < -1 or (top is not None and y.max() > top)):
        valid = f"0..{top}" if top is not None else "class indices"
        raise FormatError(f"{where}: labels must be -1 (OOD) or {valid}, found {y.min()}..{y.max()}")


def manifest_path(path: str | os.PathLike) -> Path:
    """The sidecar manifest of a set file: ``<path without .npz>.json``."""
    p = Path(path)
    return p.with_suffix(".json") if p.suffix == ".npz" else p.with_name(p.name + ".json")


def write_set(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    sources: list[str],
    seed: int,
    details: Mapping[str, Any] | None = None,
    image_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Save a set atomically as ``.npz`` (byte-stable) plus its JSON sidecar; return the sidecar.

    ``x`` may be a :class:`oodflow.data.derive.Images`, written chunk by chunk (its format checked
    on an empty probe, its count against ``y``)."""
    from oodflow.data.derive import Images

    if isinstance(x, Images):
        validate_set(np.zeros((0, *x.image_shape), np.uint8), y[:0], str(path), image_shape=image_shape)
        validate_set(np.zeros((len(y), 1, 1), np.uint8), y, str(path), num_classes=num_classes)
        if len(x) != len(y):
            raise FormatError(f"{path}: x has {len(x)} images but y has {len(y)} labels")
        save_npz(path, x=x.streamed(), y=y)
    else:
        validate_set(x, y, str(path), image_shape=image_shape, num_classes=num_classes)
        save_npz(path, x=x, y=y)
    labels, counts = np.unique(y, return_counts=True)
    manifest = {
        "name": name,
        "count": int(len(x)),
        "shape": [int(s) for s in x.shape],
        "dtype": str(x.dtype),
        "label_counts": {str(int(k)): int(v) for k, v in zip(labels, counts, strict=True)},
        "sources": list(sources),
        "seed": int(seed),
        "sha256": sha256_file(path),
        **dict(details or {}),
    }
    write_json(manifest_path(path), manifest)
    return manifest


def load_set(
    path: str | os.PathLike, *, image_shape: tuple[int, ...] | None = None, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load a set saved by :func:`write_set`; errors name ``path``."""
    arrays = load_npz(path, required={"x": None, "y": 1})
    extra = sorted(set(arrays) - {"x", "y"})
    if extra:
        raise FormatError(f"{path}: unexpected arrays {', '.join(extra)} (a set holds exactly x and y)")
    x, y = arrays["x"], arrays["y"]
    validate_set(x, y, str(path), image_shape=image_shape, num_classes=num_classes)
    return x, y

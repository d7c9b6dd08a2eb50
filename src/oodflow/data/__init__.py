"""Datasets. Importing this package is cheap: it imports neither torch nor scikit-image nor mlxtend.

``BENCHMARKS`` maps a benchmark name to its :class:`~oodflow.data.benchmarks.Benchmark`;
``OOD_SETS`` maps each OOD test set name to its builder ``f(seed, count) -> (x, y)`` (imported on
first :meth:`~oodflow.registry.Registry.get`). The builders and helpers of
:mod:`oodflow.data.embedded` are also reachable here as attributes, imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from oodflow.registry import Registry

_EMBEDDED = "oodflow.data.embedded"

BENCHMARKS = Registry(
    "benchmark",
    {
        "mnist5k": "oodflow.data.benchmarks:MNIST5K",
        "cifar10": "oodflow.data.benchmarks:CIFAR10",
        "cifar100": "oodflow.data.benchmarks:CIFAR100",
        "food101": "oodflow.data.benchmarks:FOOD101",
    },
)

OOD_SETS = Registry(
    "OOD set",
    {
        name: f"{_EMBEDDED}:build_{name}"
        for name in ("textures", "photos", "faces", "glyphs", "gaussian", "uniform")
    },
)

_LAZY = (
    "SOURCES",
    "MNIST5K_MEAN",
    "MNIST5K_STD",
    "IMAGE_FORMATS",
    "assert_disjoint_sources",
    "build_id_splits",
    "build_ood_set",
    "build_aux_pool",
    "build_textures",
    "build_photos",
    "build_faces",
    "build_glyphs",
    "build_gaussian",
    "build_uniform",
    "write_set",
    "load_set",
    "to_model_input",
)

__all__ = ["BENCHMARKS", "OOD_SETS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_EMBEDDED), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

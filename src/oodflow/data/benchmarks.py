"""Benchmark definitions: the ID dataset, its classes, normalisation and available OOD sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Benchmark:
    """An ID dataset with the facts models and scores need.

    Attributes:
        name: registry name, also the results folder (``results/<name>``).
        num_classes: number of ID classes.
        mean, std: normalisation of the grey intensities in [0, 1].
        ood_sets: names of the OOD test sets this benchmark offers.
    """

    name: str
    num_classes: int
    mean: float
    std: float
    ood_sets: tuple[str, ...]


MNIST5K = Benchmark(
    name="mnist5k",
    num_classes=10,
    mean=0.1307,
    std=0.3081,
    ood_sets=("textures", "photos", "faces", "glyphs", "gaussian", "uniform"),
)


def load_inputs(path, benchmark: Benchmark, image_format: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a stored set and return model-ready ``(x float32 (N,C,H,W), y int64)``."""
    from oodflow.data.embedded import load_set, to_model_input

    x, y = load_set(path)
    return to_model_input(x, image_format, benchmark.mean, benchmark.std), y

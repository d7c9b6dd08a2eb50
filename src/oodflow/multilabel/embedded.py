"""The embedded multi-label benchmark ``mnist5k-ml``: canvases of 2-4 digits, long-tailed labels.

Every set is a pure function of ``(seed, sizes)`` built from images that installed packages ship
(the spine's ``mnist5k`` digits and its non-digit sources, :mod:`oodflow.data.embedded`).

Construction (``docs/multilabel.md`` has the label histogram):

* a canvas is 32x32 grey uint8, black, split into four 16x16 quadrants; a canvas holds ``n`` tiles,
  ``n`` uniform in ``min_tiles..max_tiles`` (2..4), in ``n`` distinct quadrants drawn at random;
* a tile is a 28x28 image shrunk to 16x16 by exact area averaging (anti-aliased) and rounded;
* ID canvases (train / val / test): the ``n`` labels are distinct digit classes drawn one after
  another without replacement with probabilities proportional to the Zipf weights
  :math:`w_c = (c + 1)^{-s}` (``zipf`` = s; digit 0 is the head label, digit 9 the rarest), each tile
  a random digit of its class from the matching ``mnist5k`` split (so test canvases hold only test
  digits); the target is the multi-hot vector of the classes present;
* OE pool (``aux``) and OOD test canvases: tiles are the images of the spine's set of the same name
  (``aux``: crops of the scikit-image sources that feed no test set; ``textures``, ``photos``,
  ``faces``, ``glyphs``, ``gaussian``, ``uniform``), taken in a seeded order (cycled when the set has
  fewer images than tiles, as ``faces`` with 100); targets are all zero.

Random numbers come from ``oodflow.data.embedded.rng_for(seed, "ml/<set>")``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

CANVAS, TILE, NUM_LABELS = 32, 16, 10
#: Top-left corners of the four quadrants.
QUADRANTS = ((0, 0), (0, TILE), (TILE, 0), (TILE, TILE))
#: Digits per class of the spine's mnist5k splits the canvases draw from (all 500 used).
DIGIT_SPLITS = {"train": 350, "val": 50, "test": 100}


def zipf_weights(exponent: float, num_labels: int = NUM_LABELS) -> np.ndarray:
    """Normalised sampling weights :math:`w_c \\propto (c + 1)^{-s}` of the labels."""
    if exponent < 0:
        raise ValueError(f"zipf exponent must be >= 0, got {exponent}")
    w = np.arange(1, num_labels + 1, dtype=np.float64) ** -float(exponent)
    return w / w.sum()


def expected_label_frequency(exponent: float, min_tiles: int, max_tiles: int) -> np.ndarray:
    """Exact probability that a canvas carries each label (enumerates the ordered draws)."""
    w = zipf_weights(exponent)
    out = np.zeros(NUM_LABELS)
    for n in range(min_tiles, max_tiles + 1):
        for seq in itertools.permutations(range(NUM_LABELS), n):
            p, left = 1.0, 1.0
            for c in seq:
                p *= w[c] / left
                left -= w[c]
            out[list(seq)] += p / (max_tiles - min_tiles + 1)
    return out


def shrink_tiles(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> uint8 ``(N, 16, 16)`` by exact area averaging, rounded."""
    from oodflow.data.embedded import _resize_matrix

    m = _resize_matrix(images.shape[1], TILE)
    small = np.einsum("ih,nhw,jw->nij", m, images.astype(np.float64), m)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def _check_tiles(min_tiles: int, max_tiles: int) -> None:
    if not 1 <= min_tiles <= max_tiles <= len(QUADRANTS):
        raise ValueError(f"need 1 <= min_tiles <= max_tiles <= 4, got {min_tiles}, {max_tiles}")


def _place(canvas: np.ndarray, tiles: list[np.ndarray], quadrants: np.ndarray) -> None:
    for tile, q in zip(tiles, quadrants, strict=True):
        r, c = QUADRANTS[int(q)]
        canvas[r : r + TILE, c : c + TILE] = tile


def build_id_canvases(
    seed: int,
    sizes: dict[str, int],
    zipf: float = 1.0,
    min_tiles: int = 2,
    max_tiles: int = 4,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (x uint8 (N, 32, 32), y uint8 (N, 10) multi-hot)}`` for ``sizes`` = {split: N}."""
    from oodflow.data.embedded import build_id_splits, rng_for

    _check_tiles(min_tiles, max_tiles)
    digits = build_id_splits(seed, **{f"{s}_per_class": n for s, n in DIGIT_SPLITS.items()})
    w = zipf_weights(zipf)
    out = {}
    for split, count in sizes.items():
        x_digits, y_digits = digits[split]
        tiles = shrink_tiles(x_digits)
        pools = [np.flatnonzero(y_digits == c) for c in range(NUM_LABELS)]
        rng = rng_for(seed, f"ml/{split}")
        x = np.zeros((count, CANVAS, CANVAS), dtype=np.uint8)
        y = np.zeros((count, NUM_LABELS), dtype=np.uint8)
        for i in range(count):
            n = int(rng.integers(min_tiles, max_tiles + 1))
            labels = rng.choice(NUM_LABELS, size=n, replace=False, p=w)
            quadrants = rng.permutation(len(QUADRANTS))[:n]
            picks = [tiles[pools[c][int(rng.integers(len(pools[c])))]] for c in labels]
            _place(x[i], picks, quadrants)
            y[i, labels] = 1
        out[split] = (x, y)
    return out


def build_outlier_canvases(
    name: str, seed: int, count: int, min_tiles: int = 2, max_tiles: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` canvases of tiles of the spine's set ``name`` (``aux`` or an OOD set); targets zero."""
    from oodflow.data.embedded import build_aux_pool, build_ood_set, rng_for

    _check_tiles(min_tiles, max_tiles)
    needed = count * max_tiles
    images = build_aux_pool(seed, needed)[0] if name == "aux" else build_ood_set(name, seed, needed)[0]
    tiles = shrink_tiles(images)
    rng = rng_for(seed, f"ml/{name}")
    order = rng.permutation(len(tiles))
    x = np.zeros((count, CANVAS, CANVAS), dtype=np.uint8)
    k = 0
    for i in range(count):
        n = int(rng.integers(min_tiles, max_tiles + 1))
        quadrants = rng.permutation(len(QUADRANTS))[:n]
        picks = [tiles[order[(k + j) % len(order)]] for j in range(n)]
        k += n
        _place(x[i], picks, quadrants)
    return x, np.zeros((count, NUM_LABELS), dtype=np.uint8)


def sources(name: str) -> list[str]:
    """The installed-package sources behind set ``name`` (ID splits: the mnist5k digits)."""
    from oodflow.data.embedded import SOURCES

    return SOURCES["id"] if name in DIGIT_SPLITS else SOURCES[name]


def label_histogram(y: np.ndarray) -> dict[str, Any]:
    """Per-label image counts and the distribution of labels per image of a multi-hot set."""
    y = np.asarray(y)
    per_image = y.sum(1).astype(int)
    return {
        "images": int(len(y)),
        "per_label": [int(v) for v in y.sum(0)],
        "labels_per_image": {
            str(k): int((per_image == k).sum()) for k in range(y.shape[1] + 1) if (per_image == k).any()
        },
    }

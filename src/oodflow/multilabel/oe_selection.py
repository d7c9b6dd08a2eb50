"""EDGE's OE-dataset selection measure ("dilation distance"; ``oe.py`` of Yuchen-Sunflower/EDGE@6cce68fa).

For batches of backbone features :math:`F_b` (B x D; the pooled trunk output before any classifier
neck, :meth:`oodflow.models.base.OODNet.backbone_features`: the 2048-d average-pooled output of a
ResNet-50, as ``oe.py`` takes it) of the ID data and of a candidate OE set, the
singular values :math:`\\sigma(F_b)` (descending, ``min(B, D)`` of them) are averaged over the
batches, :math:`\\bar\\Sigma = \\frac{1}{n_b}\\sum_b \\sigma(F_b)`, and

.. math:: d = \\lVert \\bar\\Sigma_{in}[:k] - \\bar\\Sigma_{out}[:k] \\rVert_2

(the paper's :math:`\\lVert \\Sigma^k_{in} - \\Sigma^k_{out} \\rVert_F` of the diagonal top-k
matrices). QUIRK (``quirk_sqrt_k``): the reference accumulates the vectors into (B, B_oe) matrices
by broadcasting, so ``[:k]`` picks k identical rows and it prints
:math:`\\sqrt{k}\\,\\lVert \\bar\\Sigma_{in} - \\bar\\Sigma_{out} \\rVert_2` over *all* singular values.

Only full batches are used (the reference would crash on a final partial batch), and the number of
batches is the smaller of the two sets'. Batches are drawn shuffled, as the reference's
``DataLoader(shuffle=True)``: batch ``b`` of a set is rows ``order[b*B .. (b+1)*B - 1]`` of its
feature array, ``order`` a seeded permutation (:func:`batch_order`: one for the ID set, shared by
every candidate as the reference's fixed seed gives its ID loader the same shuffle in each run, and
one per candidate, keyed by its name). Which direction means "more informative" could not be checked in the
paper (UNVERIFIED; docs/multilabel.md): the table reports the distance and ranks by it in the
configured direction.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from oodflow.seeding import derive_seed

#: the name :func:`batch_order` keys the ID set's permutation by.
ID_ORDER = "id"


def batch_order(n: int, seed: int, name: str) -> np.ndarray:
    """The seeded permutation of ``n`` rows that set ``name``'s batches are drawn from."""
    return np.random.default_rng(derive_seed(seed, "oe-selection", name)).permutation(n)


def mean_spectrum(
    features: np.ndarray, batch_size: int, batches: int, order: np.ndarray | None = None
) -> np.ndarray:
    """Singular values of each of the first ``batches`` full batches, averaged (float64); batch
    ``b`` is rows ``order[b*B:(b+1)*B]`` (``order`` None: the rows in source order)."""
    f = np.asarray(features, dtype=np.float64)
    if batches < 1 or batches * batch_size > len(f):
        raise ValueError(f"{len(f)} samples do not hold {batches} full batches of {batch_size}")
    rows = np.arange(len(f)) if order is None else np.asarray(order)
    if len(rows) != len(f):
        raise ValueError(f"order has {len(rows)} rows for {len(f)} samples")
    spectra = [
        np.linalg.svd(f[rows[b * batch_size : (b + 1) * batch_size]], compute_uv=False)
        for b in range(batches)
    ]
    return np.mean(spectra, axis=0)


def dilation_distance(
    id_features: np.ndarray,
    oe_features: np.ndarray,
    k: int,
    batch_size: int,
    quirk_sqrt_k: bool = False,
    id_order: np.ndarray | None = None,
    oe_order: np.ndarray | None = None,
) -> float:
    """The distance between the averaged top-``k`` spectra (module docstring); ``id_order`` and
    ``oe_order``: the permutations the batches are drawn from (None: source order)."""
    batches = min(len(id_features), len(oe_features)) // batch_size
    if batches < 1:
        raise ValueError(f"need at least one full batch of {batch_size} in both sets")
    s_in = mean_spectrum(id_features, batch_size, batches, id_order)
    s_out = mean_spectrum(oe_features, batch_size, batches, oe_order)
    if quirk_sqrt_k:
        return float(np.sqrt(k) * np.linalg.norm(s_in - s_out))
    return float(np.linalg.norm(s_in[:k] - s_out[:k]))


def ranking(
    id_features: np.ndarray,
    candidates: Mapping[str, np.ndarray],
    k: int,
    batch_size: int,
    quirk_sqrt_k: bool = False,
    prefer: str = "larger",
    *,
    seed: int,
) -> list[dict]:
    """Rows ``{"rank", "oe_set", "distance", "n"}`` sorted by distance (``prefer``: larger first or
    smaller first; ties by name); batches drawn by :func:`batch_order` of ``seed``."""
    if prefer not in ("larger", "smaller"):
        raise ValueError(f"prefer must be 'larger' or 'smaller', got {prefer!r}")
    id_order = batch_order(len(id_features), seed, ID_ORDER)
    rows = [
        {
            "oe_set": name,
            "distance": dilation_distance(
                id_features, f, k, batch_size, quirk_sqrt_k, id_order, batch_order(len(f), seed, name)
            ),
            "n": len(f),
        }
        for name, f in candidates.items()
    ]
    sign = -1.0 if prefer == "larger" else 1.0
    rows.sort(key=lambda r: (sign * r["distance"], r["oe_set"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]

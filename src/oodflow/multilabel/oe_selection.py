"""EDGE's OE-dataset selection measure ("dilation distance"; ``oe.py`` of Yuchen-Sunflower/EDGE@6cce68fa).

For batches of backbone features :math:`F_b` (B x D) of the ID data and of a candidate OE set, the
singular values :math:`\\sigma(F_b)` (descending, ``min(B, D)`` of them) are averaged over the
batches, :math:`\\bar\\Sigma = \\frac{1}{n_b}\\sum_b \\sigma(F_b)`, and

.. math:: d = \\lVert \\bar\\Sigma_{in}[:k] - \\bar\\Sigma_{out}[:k] \\rVert_2

(the paper's :math:`\\lVert \\Sigma^k_{in} - \\Sigma^k_{out} \\rVert_F` of the diagonal top-k
matrices). QUIRK (``quirk_sqrt_k``): the reference accumulates the vectors into (B, B_oe) matrices
by broadcasting, so ``[:k]`` picks k identical rows and it prints
:math:`\\sqrt{k}\\,\\lVert \\bar\\Sigma_{in} - \\bar\\Sigma_{out} \\rVert_2` over *all* singular values.

Only full batches are used (the reference would crash on a final partial batch); batch ``b`` of
each set is rows ``b*B .. (b+1)*B - 1`` of its feature array, and the number of batches is the
smaller of the two sets'. Which direction means "more informative" could not be checked in the
paper (UNVERIFIED; docs/multilabel.md): the table reports the distance and ranks by it in the
configured direction.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def mean_spectrum(features: np.ndarray, batch_size: int, batches: int) -> np.ndarray:
    """Singular values of each of the first ``batches`` full batches, averaged (float64)."""
    f = np.asarray(features, dtype=np.float64)
    if batches < 1 or batches * batch_size > len(f):
        raise ValueError(f"{len(f)} samples do not hold {batches} full batches of {batch_size}")
    spectra = [
        np.linalg.svd(f[b * batch_size : (b + 1) * batch_size], compute_uv=False) for b in range(batches)
    ]
    return np.mean(spectra, axis=0)


def dilation_distance(
    id_features: np.ndarray, oe_features: np.ndarray, k: int, batch_size: int, quirk_sqrt_k: bool = False
) -> float:
    """The distance between the averaged top-``k`` spectra (module docstring)."""
    batches = min(len(id_features), len(oe_features)) // batch_size
    if batches < 1:
        raise ValueError(f"need at least one full batch of {batch_size} in both sets")
    s_in = mean_spectrum(id_features, batch_size, batches)
    s_out = mean_spectrum(oe_features, batch_size, batches)
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
) -> list[dict]:
    """Rows ``{"rank", "oe_set", "distance", "n"}`` sorted by distance (``prefer``: larger first or
    smaller first; ties by name)."""
    if prefer not in ("larger", "smaller"):
        raise ValueError(f"prefer must be 'larger' or 'smaller', got {prefer!r}")
    rows = [
        {
            "oe_set": name,
            "distance": dilation_distance(id_features, f, k, batch_size, quirk_sqrt_k),
            "n": len(f),
        }
        for name, f in candidates.items()
    ]
    sign = -1.0 if prefer == "larger" else 1.0
    rows.sort(key=lambda r: (sign * r["distance"], r["oe_set"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(rows)]

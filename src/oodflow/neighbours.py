"""Exact k-th nearest-neighbour distances, blocked so memory stays bounded (KNN score, benchmarks).

Two backends compute the same quantity, the squared L2 distance from each query to its ``k``-th
nearest row of a bank, :math:`\\lVert q \\rVert^2 + \\lVert b \\rVert^2 - 2 q \\cdot b` (clamped at 0):

* ``numpy`` (float64, BLAS matmul + ``np.partition``): no torch import, the post-hoc jobs' default;
* ``torch`` (float32 matmul + ``topk`` on ``device``: a GPU when there is one): the fast path at
  paper scale (50k x 512 bank, k = 300). ``benchmarks/bench_knn.py`` times both against the bare
  matmul (the floor of any exact search) and faiss ``IndexFlatL2`` when it is installed.

Both are exact searches (every distance is computed); they differ only in floating-point rounding.
"""

from __future__ import annotations

import numpy as np

BACKENDS = ("numpy", "torch")
#: Entries of one block's distance matrix (queries x bank); read at call time (a test lowers it).
BLOCK_ENTRIES = 1 << 24


def _block_rows(block_entries: int | None, bank_rows: int, cap: int | None = None) -> int:
    """Queries per block: ``block_entries`` (None: :data:`BLOCK_ENTRIES`) over the bank's rows."""
    rows = max(1, (BLOCK_ENTRIES if block_entries is None else int(block_entries)) // max(bank_rows, 1))
    return rows if cap is None else min(cap, rows)


def kth_sqdist_numpy(
    queries: np.ndarray, bank: np.ndarray, k: int, block_entries: int | None = None
) -> np.ndarray:
    """Squared distance of each query to its ``k``-th nearest bank row, float64 (numpy)."""
    queries, bank = np.asarray(queries, dtype=np.float64), np.asarray(bank, dtype=np.float64)
    bank_sq = (bank * bank).sum(1)
    block = _block_rows(block_entries, bank.shape[0], cap=1024)
    out = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        sq = (q * q).sum(1)[:, None] + bank_sq[None, :] - 2.0 * q @ bank.T
        out[start : start + block] = np.maximum(np.partition(sq, k - 1, axis=1)[:, k - 1], 0.0)
    return out


def kth_sqdist_torch(
    queries: np.ndarray, bank: np.ndarray, k: int, device: str = "auto", block_entries: int | None = None
) -> np.ndarray:
    """As :func:`kth_sqdist_numpy` in float32 with torch (``device`` auto: CUDA when present)."""
    import torch

    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    )
    b = torch.as_tensor(np.asarray(bank, dtype=np.float32), device=dev)
    b_sq = (b * b).sum(1)
    block = _block_rows(block_entries, b.shape[0])
    out = []
    with torch.inference_mode():
        for start in range(0, len(queries), block):
            q = torch.as_tensor(np.asarray(queries[start : start + block], dtype=np.float32), device=dev)
            sq = (q * q).sum(1)[:, None] + b_sq[None, :] - 2.0 * q @ b.T
            kth = sq.topk(k, dim=1, largest=False).values[:, k - 1]
            out.append(kth.clamp_min(0.0).double().cpu())
    return torch.cat(out).numpy() if out else np.empty(0)


def kth_sqdist(
    queries: np.ndarray, bank: np.ndarray, k: int, backend: str = "numpy", device: str = "auto"
) -> np.ndarray:
    """Squared L2 distance of each query to its ``k``-th nearest bank row with ``backend``."""
    if not 1 <= k <= len(bank):
        raise ValueError(f"k={k} must be in [1, {len(bank)}] (the bank's size)")
    if backend == "numpy":
        return kth_sqdist_numpy(queries, bank, k)
    if backend == "torch":
        return kth_sqdist_torch(queries, bank, k, device)
    raise ValueError(f"unknown nearest-neighbour backend '{backend}'; valid: {', '.join(BACKENDS)}")

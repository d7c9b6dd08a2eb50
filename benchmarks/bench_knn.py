"""Time the exact k-th-neighbour search of the KNN score against the matmul floor.

At PALM/ADAPT's scale (a bank of 50,000 L2-normalised 512-d training features, 10,000 queries,
k = 300) every exact search must at least compute the 10,000 x 50,000 inner products; the bare
blocked matmul is that floor. Timed (best of ``--repeat``):

- ``numpy``: :func:`oodflow.neighbours.kth_sqdist_numpy` (float64 BLAS matmul + ``np.partition``);
- ``torch-cpu`` / ``torch-cuda``: :func:`oodflow.neighbours.kth_sqdist_torch` (float32 + ``topk``);
- ``floor-*``: the same blocked matmul without the selection, per backend;
- ``faiss``: ``IndexFlatL2.search`` (k neighbours; CPU) when faiss is importable (not a dependency).

    PYTHONPATH=src python benchmarks/bench_knn.py --out benchmarks/results/bench_knn_cpu.json
    PYTHONPATH=src python benchmarks/bench_knn.py --bank 5000 --queries 1000   # a quick CPU check

Also reports the largest disagreement of each backend's k-th distance with numpy's (exactness).
Numbers are measurements for the docs, never assertions.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from oodflow.neighbours import BLOCK_ENTRIES, kth_sqdist_numpy, kth_sqdist_torch  # noqa: E402


def _best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def _floor_numpy(q, b):
    block = max(1, min(1024, BLOCK_ENTRIES // len(b)))
    for s in range(0, len(q), block):
        q[s : s + block] @ b.T


def _floor_torch(q, b, device):
    import torch

    qt, bt = torch.as_tensor(q, device=device), torch.as_tensor(b, device=device)
    block = max(1, BLOCK_ENTRIES // len(b))
    with torch.inference_mode():
        for s in range(0, len(qt), block):
            qt[s : s + block] @ bt.T
        if device == "cuda":
            torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    bank = unit(rng.normal(size=(args.bank, args.dim))).astype(np.float32)
    queries = unit(rng.normal(size=(args.queries, args.dim))).astype(np.float32)
    results: dict[str, dict] = {}
    t, ref = _best(lambda: kth_sqdist_numpy(queries, bank, args.k), args.repeat)
    results["numpy"] = {"seconds": t}
    results["floor-numpy-f64"] = {
        "seconds": _best(
            lambda: _floor_numpy(queries.astype(np.float64), bank.astype(np.float64)), args.repeat
        )[0]
    }
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        kth_sqdist_torch(queries[:10], bank, args.k, dev)  # warm-up (CUDA context, kernels)
        t, out = _best(lambda dev=dev: kth_sqdist_torch(queries, bank, args.k, dev), args.repeat)
        results[f"torch-{dev}"] = {"seconds": t, "max_abs_diff_vs_numpy": float(np.abs(out - ref).max())}
        results[f"floor-torch-{dev}-f32"] = {
            "seconds": _best(lambda dev=dev: _floor_torch(queries, bank, dev), args.repeat)[0]
        }
    try:
        import faiss

        def search():
            index = faiss.IndexFlatL2(args.dim)
            index.add(bank)
            return index.search(queries, args.k)[0][:, -1]

        t, out = _best(search, args.repeat)
        results["faiss-cpu"] = {"seconds": t, "max_abs_diff_vs_numpy": float(np.abs(out - ref).max())}
    except ImportError:
        results["faiss-cpu"] = {"seconds": None, "note": "faiss not installed"}
    for name, r in results.items():
        floor = results.get("floor-torch-cuda-f32" if "cuda" in name else "floor-torch-cpu-f32", {}).get(
            "seconds"
        )
        if r.get("seconds") and floor and not name.startswith("floor"):
            r["x_floor_f32"] = r["seconds"] / floor
    report = {
        "bank": args.bank,
        "queries": args.queries,
        "dim": args.dim,
        "k": args.k,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "results": results,
    }
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

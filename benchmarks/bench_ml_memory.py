"""Peak host memory (RSS) of building and of training on an EDGE-like OE pool, against its size.

EDGE trains on a 300K-image outlier pool at 256 px (issue 22): stored whole and converted whole to
float32 it needed ~180 GB to build and ~750 GB per OE training job. This measures, per pool size
``N`` (increasing, in one fresh process per phase and version: ``ru_maxrss`` after each size, and
after a warm-up at a quarter of the smallest, which holds the imports):

* ``build``: rule ``ml_build_outliers`` (:func:`oodflow.multilabel.steps.build_outliers`) deriving
  an OE pool of ``N`` images at ``--side`` px from a synthetic array-form source of 32 px images
  (Tiny Images' form: ``prepared/train.npz``);
* ``train``: rule ``ml_train`` (:func:`oodflow.multilabel.steps.train`) for one epoch of the EDGE
  objective with a small CNN on a fixed ID set (128 train, 64 val images), the OE pool of ``N``.

``--src LABEL=PATH`` runs the phases with another checkout's library (e.g. the version before
streaming, ``git worktree add /tmp/before <commit>`` then ``--src before=/tmp/before/src``); the
default is this checkout as ``after``. Sizes are small (64 px) so that it runs in minutes on two
cores; the per-image bytes scale with ``side^2``.

    python benchmarks/bench_ml_memory.py --src before=/tmp/before/src --src after=src \\
        --out benchmarks/results/bench_ml_memory_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_VAL, SOURCE_SIDE = 128, 64, 32


def _config(n: int, side: int) -> dict:
    import yaml

    from oodflow.config import validate

    config = validate(yaml.safe_load((ROOT / "config" / "papers" / "edge_voc2012.yaml").read_text()))
    config["device"] = "cpu"
    b = config["multilabel"]["benchmark"]
    b.update(image_size=side, oe_size=n, oe_set="tinyimages_300k", train_size=N_TRAIN, val_size=N_VAL)
    run = config["multilabel"]["runs"]["edge"]
    run.update(model="small_cnn", model_args={}, epochs=1, batch_size=32, oe_batch_size=32)
    config["multilabel"]["runs"] = {"edge": run}
    return config


def _phase(phase: str, sizes: list[int], side: int, work: Path):
    """One phase for every pool size, in increasing order, in this (fresh) process: yields the peak
    RSS after each size (``ru_maxrss`` never decreases, so a flat series means no growth in N) and
    the RSS after the imports and a warm-up at the smallest size."""
    import numpy as np

    from oodflow.io import save_npz, write_json
    from oodflow.multilabel import steps
    from oodflow.seeding import configure_determinism

    configure_determinism(1)  # its imports (torch's compiler stack) are part of the base, not of N
    rng = np.random.default_rng(0)
    for split, count in (("train", N_TRAIN), ("val", N_VAL)):
        x = rng.integers(0, 256, (count, side, side, 3), dtype=np.uint8)
        y = (rng.random((count, 20)) < 0.15).astype(np.uint8)
        save_npz(work / f"{split}.npz", x=x, y=y)

    def one(n: int) -> float:
        config, oe, prepared = _config(n, side), work / f"oe{n}.npz", work / f"prepared{n}"
        if not oe.exists():  # the source of the build, and the pool of the training
            prepared.mkdir(exist_ok=True)
            x = rng.integers(0, 256, (n, SOURCE_SIDE, SOURCE_SIDE, 3), dtype=np.uint8)
            save_npz(prepared / "train.npz", x=x, y=np.full(n, -1, np.int64))
            write_json(prepared / "prepared.json", {"form": "array", "splits": {"train": n}})
            del x
        start = time.perf_counter()
        if phase == "build":
            steps.build_outliers(config, "oe", "tinyimages_300k", str(oe), {"prepared": str(prepared)})
        else:
            steps.train(
                config, "edge", str(work / "train.npz"), str(work / "val.npz"), str(work / "model.pt"),
                str(work / "log.csv"), str(work / "ckpt.pt"), oe_npz=str(oe),
            )  # fmt: skip
        return time.perf_counter() - start

    one(min(sizes) // 4)  # warm-up: every import and lazy initialisation happens here
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for n in sorted(sizes):
        seconds = one(n)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        yield {
            "n": n,
            "peak_rss_mb": round(peak, 1),
            "base_rss_mb": round(base, 1),
            "seconds": round(seconds, 2),
        }


def _run(src: str, phase: str, sizes: list[int], side: int, work: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve()), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--phase", phase, "--sizes", ",".join(map(str, sizes))]
    cmd += ["--side", str(side), "--work", str(work)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", help="LABEL=PATH of a library (default after=src)")
    parser.add_argument("--sizes", default="500,1000,2000,4000")
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--out", help="write the JSON here")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    if args.phase:
        for row in _phase(args.phase, sizes, args.side, Path(args.work)):
            print(json.dumps(row), flush=True)
        return
    sources = dict(s.split("=", 1) for s in (args.src or [f"after={ROOT / 'src'}"]))
    rows = []
    for label, src in sources.items():
        with tempfile.TemporaryDirectory() as tmp:
            for phase in ("build", "train"):  # the training reads the pools the build wrote
                for row in _run(src, phase, sizes, args.side, Path(tmp)):
                    row = {"version": label, "phase": phase, **row}
                    row["pool_uint8_mb"] = round(row["n"] * args.side**2 * 3 / 2**20, 1)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    result = {
        "what": "peak RSS (ru_maxrss, MB, cumulative over increasing N) of ml_build_outliers and of one "
        "ml_train epoch vs OE pool size",
        "side": args.side,
        "id_train": N_TRAIN,
        "id_val": N_VAL,
        "source_side": SOURCE_SIDE,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": rows,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

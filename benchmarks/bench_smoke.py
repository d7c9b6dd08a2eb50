"""Time the smoke run of every paper config (``python -m oodflow.smoke``), as the smoke tests run them.

    python benchmarks/bench_smoke.py                          # all of config/papers/, 2 cores
    python benchmarks/bench_smoke.py --config config/papers/food101.yaml --json out.json

One config after another in a temporary directory, sharing one resources/ folder (each fake dataset
downloaded and prepared once, as ``tests/test_smoke.py`` does). Reports per config the wall time, the
number of jobs Snakemake ran, the fakes' size and whether :func:`oodflow.smoke.run.check` passed.
Numbers are measurements for the note and docs, never assertions.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oodflow.smoke import run as smoke  # noqa: E402


def bench(config: Path, work: Path, resources: Path, cores: int) -> dict:
    start = time.perf_counter()
    s = smoke.setup(config, work, resources=resources)
    fakes = time.perf_counter() - start
    proc = smoke.snakemake(s, cores=cores, capture=True)
    wall = time.perf_counter() - start
    done = re.findall(r"(\d+) of (\d+) steps", proc.stderr + proc.stdout)
    problems = smoke.check(s) if proc.returncode == 0 else ["snakemake failed"]
    return {
        "config": config.name,
        "wall_s": round(wall, 1),
        "fakes_s": round(fakes, 1),
        "jobs": int(done[-1][1]) if done else 0,
        "fake_mib": round(sum(p.stat().st_size for p in s.fakes.values()) / 2**20, 1),
        "rc": proc.returncode,
        "well_formed": not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="a config (repeatable; default: config/papers/*)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    configs = (
        [Path(c) for c in args.config] if args.config else sorted((ROOT / "config/papers").glob("*.yaml"))
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            rows.append(bench(config, Path(tmp) / config.stem, Path(tmp) / "resources", args.cores))
            print(json.dumps(rows[-1]), flush=True)
    total = sum(r["wall_s"] for r in rows)
    print("\n| config | wall s | jobs | fakes MiB | well-formed |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['wall_s']} | {r['jobs']} | {r['fake_mib']} | {r['well_formed']} |")
    print(f"| total | {total:.0f} | {sum(r['jobs'] for r in rows)} | | |")
    if args.json:
        meta = {"machine": platform.platform(), "python": platform.python_version(), "cores": args.cores}
        Path(args.json).write_text(
            json.dumps({"meta": meta, "runs": rows, "total_s": round(total, 1)}, indent=2)
        )


if __name__ == "__main__":
    main()

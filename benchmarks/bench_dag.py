"""Time the workflow: the default DAG cold and as a no-op rerun, and cached vs network scoring.

    python benchmarks/bench_dag.py                 # default config, in a fresh temporary directory
    python benchmarks/bench_dag.py --config config/test.yaml --determinism

Reports (Markdown on stdout, JSON with --json):
- wall time of ``snakemake --cores N`` from nothing (cold) and right after (no-op);
- per-rule time and peak memory (max RSS) from Snakemake's ``benchmark:`` files;
- time to compute every post-hoc score from the feature cache, against re-running the network
  once per score (what a pipeline without a cache does);
- with ``--determinism``: a second clean run and whether every file in results/ is byte-identical.
Numbers are measurements for the note and the README, never assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, config: Path, cores: int) -> float:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        str(cores),
        "--quiet",
        "all",
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def rule_benchmarks(workdir: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((workdir / "logs").rglob("benchmarks/**/*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        rule = tsv.relative_to(workdir / "logs").parts[2]
        rows.append(
            {
                "rule": rule,
                "job": str(tsv.relative_to(workdir / "logs")),
                "s": frame.s.iloc[0],
                "max_rss_mb": frame.max_rss.iloc[0],
            }
        )
    return pd.DataFrame(rows)


def scoring_cost(workdir: Path, config: dict) -> dict[str, float]:
    """Seconds for all post-hoc scores from the cache vs one forward pass per score and set."""
    import torch

    from oodflow import features
    from oodflow.data import BENCHMARKS
    from oodflow.data.benchmarks import load_inputs
    from oodflow.scores import NETWORK_SCORES, Cache, Head, build_score
    from oodflow.training import load_model

    torch.set_num_threads(1)
    out = workdir / "results" / config["benchmark"]["name"]
    bench = BENCHMARKS.get(config["benchmark"]["name"])
    run = next(iter(config["runs"]))
    sets = ["train", "test"] + [f"ood/{o}" for o in config["benchmark"]["ood_sets"]]
    names = [s for s in config["scores"] if s not in NETWORK_SCORES]
    model, _ = load_model(out / "runs" / run / "model.pt")
    head = Head.from_npz(out / "features" / run / "train.npz")

    def score_all(caches: dict[str, Cache], name: str) -> None:
        scorer = build_score(name, **config["scores"][name]).fit(caches["train"], head)
        for key in sets[1:]:
            scorer.score(caches[key])

    start = time.perf_counter()
    caches = {s: Cache.from_npz(out / "features" / run / f"{s}.npz") for s in sets}
    for name in names:
        score_all(caches, name)
    cached = time.perf_counter() - start

    inputs = {
        s: load_inputs(out / "data" / f"{s}.npz", bench, config["benchmark"]["image_format"]) for s in sets
    }
    start = time.perf_counter()
    for name in names:
        fresh = {}
        for s, (x, y) in inputs.items():
            logits, feats = features.extract(model, x)
            fresh[s] = Cache(logits, feats, y)
        score_all(fresh, name)
    network = time.perf_counter() - start
    return {"scores": len(names), "from_cache_s": cached, "network_per_score_s": network}


#: files that are not byte-stable by design: the Optuna study database holds timestamps
NOT_BYTE_STABLE = ("study.db",)


def tree_digest(results: Path) -> dict[str, str]:
    return {
        str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.rglob("*"))
        if p.is_file() and p.name not in NOT_BYTE_STABLE
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--determinism", action="store_true", help="second clean run, compare bytes")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    from oodflow.config import validate

    config = validate(yaml.safe_load(args.config.read_text()))
    report: dict = {
        "config": str(args.config),
        "cores": args.cores,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory(prefix="oodflow-bench-") as tmp:
        work = Path(tmp) / "a"
        report["cold_s"] = snakemake(work, args.config, args.cores)
        report["noop_s"] = snakemake(work, args.config, args.cores)
        rules = rule_benchmarks(work)
        report["rules"] = (
            rules.groupby("rule")
            .agg(jobs=("s", "size"), total_s=("s", "sum"), max_rss_mb=("max_rss_mb", "max"))
            .round(2)
            .to_dict("index")
        )
        report["scoring"] = scoring_cost(work, config)
        if args.determinism:
            other = Path(tmp) / "b"
            snakemake(other, args.config, args.cores)
            a, b = tree_digest(work / "results"), tree_digest(other / "results")
            report["identical_files"] = sum(a[k] == b.get(k) for k in a)
            report["differing_files"] = sorted(k for k in a if a[k] != b.get(k))

    print(f"# oodflow DAG benchmark ({args.config.name}, --cores {args.cores})\n")
    print(f"- cold run: {report['cold_s']:.1f} s; no-op rerun: {report['noop_s']:.2f} s")
    sc = report["scoring"]
    print(
        f"- {sc['scores']} post-hoc scores from the feature cache: {sc['from_cache_s']:.2f} s; "
        f"re-running the network per score: {sc['network_per_score_s']:.2f} s "
        f"({sc['network_per_score_s'] / sc['from_cache_s']:.1f}x)"
    )
    if args.determinism:
        print(
            f"- second clean run: {report['identical_files']} files identical, "
            f"differing: {report['differing_files'] or 'none'}"
        )
    print("\n| rule | jobs | total s | max RSS MB |\n|---|---|---|---|")
    for rule, r in report["rules"].items():
        print(f"| {rule} | {r['jobs']} | {r['total_s']:.2f} | {r['max_rss_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

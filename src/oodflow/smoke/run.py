"""Smoke-test a paper config: its whole DAG at toy scale on format-exact fakes, on CPU, offline.

``python -m oodflow.smoke config/papers/food101.yaml`` does, in its own work directory
(``smoke/<config>/`` of the checkout by default), what a researcher's GPU run would do, only small:

1. **Shrink** the config (:func:`oodflow.smoke.shrink.shrink`: every size, epoch count, trial count
   and sweep the schema marks ``x-smoke`` gets its toy value; runs, scores, OOD sets, comparisons and
   sections are kept) and write it as ``config.smoke.yaml`` with ``smoke: true``.
2. **Fake** every catalog dataset (and pretrained weight file) it needs
   (:mod:`oodflow.smoke.fakes`): the upstream file names, archive types and inner layouts, with a few
   images per class, into ``mirror/<name>/<file>``, and mark the folder as a smoke mirror
   (:data:`oodflow.mirrors.SMOKE_MANIFEST`, the fakes' sha256).
3. **Run** Snakemake on the checkout's Snakefile in the work directory with that mirror as the only
   source (``OODFLOW_MIRRORS``, ``OODFLOW_MIRRORS_ONLY=1``): the real download (mirror, checksum),
   safe unpacking, parsing, training, extraction, scoring, tables, figures, report pages and
   scorecard. Only a smoke run accepts the fakes' checksums; a real run refuses a smoke mirror.
4. **Check** what it wrote (:func:`check`): every run trained, every score is finite, every table has
   its rows, and the scorecard's rows of this paper read ``ran (smoke)``.

A second call reuses the work directory (Snakemake then finds nothing to do); ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from oodflow import config as oodflow_config
from oodflow.io import sha256_file, write_text
from oodflow.mirrors import write_smoke_manifest

#: The checkout this library belongs to (its Snakefile is what a smoke runs).
ROOT = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = "config.smoke.yaml"


@dataclass
class Setup:
    """What :func:`setup` wrote into a smoke work directory."""

    workdir: Path
    configfile: Path
    config: dict[str, Any]
    datasets: list[str]
    mirror: Path
    fakes: dict[str, Path] = field(default_factory=dict)  # "<name>/<file>" -> path

    def env(self) -> dict[str, str]:
        """The environment of the Snakemake run: the smoke mirror only, a private pins manifest."""
        return {
            "OODFLOW_MIRRORS": self.mirror.resolve().as_uri(),
            "OODFLOW_MIRRORS_ONLY": "1",
            "OODFLOW_CHECKSUMS": str((self.workdir / "checksums.json").resolve()),
        }


def default_workdir(config_path: str | Path) -> Path:
    return ROOT / "smoke" / Path(config_path).stem


def setup(config_path: str | Path, workdir: str | Path, *, resources: str | Path | None = None) -> Setup:
    """Shrink the config and write the fakes it needs into ``workdir`` (steps 1 and 2).

    ``resources``: a folder shared by several smoke runs as their ``resources/`` (downloaded and
    prepared fakes, which are the same bytes for every config), so that each fake dataset is
    downloaded and prepared once; by default each work directory has its own.
    """
    from oodflow.smoke.fakes import write_downloads, write_user_files
    from oodflow.smoke.shrink import shrink
    from oodflow.steps import catalog_datasets

    work = Path(workdir)
    if work.resolve() == ROOT.resolve():
        raise ValueError(f"{work}: a smoke run needs a work directory of its own, not the checkout")
    small = shrink(oodflow_config.load(config_path))
    if resources is not None:
        _link_resources(work, Path(resources))
    configfile = work / SMOKE_CONFIG
    header = f"# {Path(config_path).name} shrunk to toy scale by `python -m oodflow.smoke` (fake data)\n"
    write_text(configfile, header + yaml.safe_dump(small, sort_keys=False))
    datasets = catalog_datasets(small)
    mirror = work / "mirror"
    fakes: dict[str, Path] = {}
    for name in datasets:
        for path in write_downloads(name, mirror / name):
            fakes[f"{name}/{path.name}"] = path
        write_user_files(name, work / "resources" / "datasets" / name)
    fakes.update(_fake_weights(small, mirror))
    write_smoke_manifest(mirror, {key: sha256_file(path) for key, path in fakes.items()})
    return Setup(work, configfile, small, datasets, mirror, fakes)


def _link_resources(work: Path, shared: Path) -> None:
    """Make ``work/resources`` a link to ``shared`` (created if missing)."""
    shared.mkdir(parents=True, exist_ok=True)
    link = work / "resources"
    if link.is_symlink() and link.resolve() == shared.resolve():
        return
    if link.is_symlink() or link.exists():
        raise FileExistsError(f"{link}: exists already; remove it to share {shared}")
    work.mkdir(parents=True, exist_ok=True)
    link.symlink_to(shared.resolve(), target_is_directory=True)


def _fake_weights(config: Mapping[str, Any], mirror: Path) -> dict[str, Path]:
    """Fakes of the pretrained weight files the config's models load (none without such models)."""
    from oodflow.models.weights import config_weights
    from oodflow.smoke.weights import write_fake_weights

    fakes = {}
    for name in config_weights(config):
        path = write_fake_weights(name, mirror / name)
        fakes[f"{name}/{path.name}"] = path
    return fakes


def snakemake(
    s: Setup, *args: str, cores: int = 2, capture: bool = False, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run this checkout's Snakefile on the smoke config in the work directory."""
    snakefile = ROOT / "Snakefile"
    if not snakefile.is_file():
        raise FileNotFoundError(f"{snakefile}: python -m oodflow.smoke runs from a clone of the repository")
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(s.workdir),
        "--configfile", str(s.configfile.resolve()), "--cores", str(cores), *args,
    ]  # fmt: skip
    return subprocess.run(
        cmd, env={**os.environ, **s.env()}, capture_output=capture, text=True, timeout=timeout, check=False
    )


# ------------------------------------------------------------------------------------------ checks
def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def check(s: Setup) -> list[str]:
    """Problems with what a finished smoke run wrote (empty: all well-formed).

    Checked: every results folder of the config has its metrics table and provenance ``smoke``; every
    single-label run has a one-epoch training log and finite scores on every set, and a metrics row per
    (its score, OOD set); every OSR and multi-label run has metrics rows; every Markdown table has a
    header and at least one row; the scorecard's rows that look up this config's folders say
    ``ran (smoke)``, never ``not run`` or ``no such row``.
    """
    from oodflow import provenance

    work, cfg, problems = s.workdir, s.config, []
    folders = provenance.parts(cfg)
    for folder, part in folders.items():
        out = work / "results" / folder
        prov = out / provenance.FILENAME
        if not prov.is_file() or provenance.read_scale(prov) != "smoke":
            problems.append(f"{prov}: missing or not marked smoke")
        metrics = out / "tables" / "metrics.csv"
        if not metrics.is_file():
            problems.append(f"{metrics}: missing")
            continue
        rows = _read_csv(metrics)
        bad = [r for r in rows if not np.isfinite(float(r["value"]))]
        if bad:
            problems.append(f"{metrics}: {len(bad)} non-finite values, e.g. {bad[0]}")
        if part == "spine":
            problems += _check_spine(out, cfg, rows)
        elif not rows:
            problems.append(f"{metrics}: no rows")
        for md in sorted((out / "tables").glob("*.md")):
            lines = [line for line in md.read_text().splitlines() if line.startswith("|")]
            if len(lines) < 3:
                problems.append(f"{md}: a table needs a header, a rule and at least one row")
    problems += _check_scorecard(work, folders)
    return problems


def _check_spine(out: Path, cfg: Mapping[str, Any], rows: list[dict[str, str]]) -> list[str]:
    problems = []
    have = {(r["run"], r["score"], r["ood_set"]) for r in rows}
    for run, spec in cfg["runs"].items():
        log = out / "runs" / run / "train_log.csv"
        epochs = len(_read_csv(log)) if log.is_file() else 0
        if epochs != spec["epochs"]:
            problems.append(f"{log}: {epochs} epochs logged, the smoke config trains {spec['epochs']}")
        scores = spec.get("scores") or list(cfg["scores"])
        for score in scores:
            npz = out / "scores" / run / f"{score}.npz"
            if not npz.is_file():
                problems.append(f"{npz}: missing")
                continue
            with np.load(npz, allow_pickle=False) as data:
                for key in data.files:
                    if not np.isfinite(data[key]).all():
                        problems.append(f"{npz}: non-finite scores in '{key}'")
            for ood in cfg["benchmark"]["ood_sets"]:
                if (run, score, ood) not in have:
                    problems.append(f"{out}/tables/metrics.csv: no row for run {run}, {score}, {ood}")
    return problems


def _check_scorecard(work: Path, folders: Mapping[str, str]) -> list[str]:
    path = work / "results" / "summary" / "tables" / "scorecard.csv"
    if not path.is_file():
        return [f"{path}: missing"]
    problems = []
    for row in _read_csv(path):
        folder = row["where"].removeprefix("results/").split(":", 1)[0]
        if row["scale"] == "paper" and folder in folders and row["status"] != "ran (smoke)":
            problems.append(f"{path}: '{row['quantity']}' ({row['where']}) reads '{row['status']}'")
    return problems


# --------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oodflow.smoke",
        description="Run a paper config end to end at toy scale on format-exact fake data (CPU, offline).",
        epilog="Arguments after -- go to snakemake, e.g. -- -n (dry run) or -- --report report.html.",
    )
    parser.add_argument("config", help="a config file, e.g. config/papers/food101.yaml")
    parser.add_argument("--workdir", help="work directory (default: smoke/<config name>/ of the checkout)")
    parser.add_argument("--cores", type=int, default=2, help="Snakemake --cores (default 2)")
    parser.add_argument("--fresh", action="store_true", help="remove the work directory first")
    parser.add_argument(
        "--shared-resources",
        metavar="DIR",
        help="a resources/ folder shared by several smoke runs (each fake is downloaded and prepared once)",
    )
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    work = Path(args.workdir) if args.workdir else default_workdir(args.config)
    if args.fresh and work.exists():
        shutil.rmtree(work)
    start = time.perf_counter()
    try:
        s = setup(args.config, work, resources=args.shared_resources)
    except (oodflow_config.ConfigError, ValueError, OSError) as err:
        print(f"smoke: {err}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in s.fakes.values()) / 2**20
    print(f"smoke: {args.config} shrunk to {s.configfile}; {len(s.fakes)} fake files of "
          f"{len(s.datasets)} datasets ({size:.1f} MiB) in {s.mirror}", flush=True)  # fmt: skip
    proc = snakemake(s, *extra, cores=args.cores)
    if proc.returncode != 0:
        print(f"smoke: snakemake failed ({proc.returncode}); logs under {work / 'logs'}", file=sys.stderr)
        return proc.returncode
    if any(a in ("-n", "--dry-run", "--dryrun") or a.startswith("--report") for a in extra):
        return 0
    problems = check(s)
    for p in problems:
        print(f"smoke: {p}", file=sys.stderr)
    took = time.perf_counter() - start
    verdict = f"{len(problems)} problem(s)" if problems else "all outputs well-formed"
    print(f"smoke: {args.config}: {verdict} ({took:.0f} s); results in {work / 'results'}")
    return 1 if problems else 0

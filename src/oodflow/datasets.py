"""The paper-scale datasets of a config on disk, and their versioning with DVC.

Snakemake owns the DAG (``snakemake datasets --configfile <config>`` downloads and prepares every
catalog dataset a config needs); DVC owns versioning. This module is the bridge::

    python -m oodflow.datasets status config/papers/cifar10.yaml   # what is on disk, what is tracked
    python -m oodflow.datasets track  config/papers/cifar10.yaml   # `dvc add` it, print the `git add`

Which datasets a config needs is :func:`oodflow.steps.catalog_datasets`, the same function the
rules use. Per dataset ``resources/datasets/<name>/``, the versioned folders are ``downloads/`` (the
verified upstream files), ``prepared/`` (the common prepared form) and, for list-form datasets whose
prepared form names image files, ``raw/`` (the unpacked upstream layout the paths point into). The
rules read them as ``ancient()`` inputs, so a ``dvc pull`` (which gives files fresh mtimes) makes
Snakemake rebuild nothing. The pretrained weights files the config's runs read
(:func:`oodflow.models.weights.config_weights`) are versioned the same way: one folder
``resources/weights/<name>/`` each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where the workflow keeps catalog datasets, relative to its working directory.
DATASET_ROOT = Path("resources") / "datasets"


class TrackError(RuntimeError):
    """Tracking cannot start or failed (no dvc, not a DVC repository, nothing to track, dvc failed)."""


@dataclass(frozen=True)
class DatasetState:
    """One catalog dataset of a config as found on disk.

    Attributes:
        name, form: catalog name and prepared form ("array" or "list").
        downloads: ``(present, expected)`` number of resource files in ``downloads/``.
        raw_present: ``raw/`` exists (only versioned, and only needed, for list-form data).
        prepared_present: ``prepared/prepared.json`` exists (parsers write it last).
        tracked: the versioned folders that have a ``<folder>.dvc`` file beside them.
        size: bytes of the regular files in the versioned folders (symbolic links not followed).
    """

    name: str
    form: str
    downloads: tuple[int, int]
    raw_present: bool
    prepared_present: bool
    tracked: tuple[str, ...]
    size: int

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders DVC versions for this dataset."""
        return versioned_folders(self.form)

    def complete(self) -> dict[str, bool]:
        """Which versioned folders are complete, i.e. worth a ``dvc add``."""
        done = {"downloads": self.downloads[0] == self.downloads[1], "prepared": self.prepared_present}
        if "raw" in self.folders:  # raw/ and prepared/ are outputs of the same job
            done["raw"] = self.raw_present and self.prepared_present
        return {folder: done[folder] for folder in self.folders}


def versioned_folders(form: str) -> tuple[str, ...]:
    """``downloads`` and ``prepared``, plus ``raw`` for list-form data (array form reads only prepared)."""
    return ("downloads", "raw", "prepared") if form == "list" else ("downloads", "prepared")


def config_datasets(config_path: str | Path) -> list[str]:
    """The catalog datasets the config file needs (validated first; as the rules list them)."""
    from oodflow.config import load
    from oodflow.steps import catalog_datasets

    return catalog_datasets(load(config_path))


def config_weights(config_path: str | Path) -> list[str]:
    """The pretrained weights entries the config file's runs read (validated first)."""
    from oodflow.config import load
    from oodflow.models.weights import config_weights as needed

    return needed(load(config_path))


def _tree_size(path: Path) -> int:
    if not path.is_dir():
        return 0
    total = 0
    for folder, _, files in os.walk(path):  # does not descend into linked folders
        for name in files:
            file = os.path.join(folder, name)
            total += 0 if os.path.islink(file) else os.lstat(file).st_size
    return total


def dataset_state(name: str, workdir: str | Path = ".") -> DatasetState:
    """What of catalog dataset ``name`` is in ``workdir/resources/datasets/<name>/``."""
    from oodflow.data.catalog import DATASETS

    spec = DATASETS.get(name)
    root = Path(workdir) / DATASET_ROOT / name
    present = sum((root / "downloads" / r.filename).is_file() for r in spec.resources)
    folders = versioned_folders(spec.form)
    return DatasetState(
        name=name,
        form=spec.form,
        downloads=(present, len(spec.resources)),
        raw_present=(root / "raw").is_dir(),
        prepared_present=(root / "prepared" / "prepared.json").is_file(),
        tracked=tuple(f for f in folders if (root / f"{f}.dvc").is_file()),
        size=sum(_tree_size(root / f) for f in folders),
    )


def status(config_path: str | Path, workdir: str | Path = ".") -> list[DatasetState]:
    """The state of every catalog dataset the config needs."""
    return [dataset_state(name, workdir) for name in config_datasets(config_path)]


def human_size(n: int) -> str:
    """Bytes in powers of 1000, as the catalog's download sizes: ``1.5 GB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_status(states: Sequence[DatasetState]) -> str:
    """A plain-text table: dataset, form, downloads, raw, prepared, DVC-tracked folders, size."""
    header = ("dataset", "form", "downloads", "raw", "prepared", "dvc-tracked", "size")
    rows = [header]
    for s in states:
        raw = ("yes" if s.raw_present else "no") if "raw" in s.folders else "-"
        rows.append(
            (
                s.name,
                s.form,
                f"{s.downloads[0]}/{s.downloads[1]}",
                raw,
                "yes" if s.prepared_present else "no",
                ", ".join(s.tracked) if s.tracked else "no",
                human_size(s.size),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TrackResult:
    """The folders given to ``dvc add``, those skipped (with why) and the files to commit to git."""

    added: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    git_add: tuple[str, ...]


def _find_dvc(dvc: str | None) -> str:
    found = dvc or shutil.which("dvc")
    if not found:
        raise TrackError("dvc is not installed (or not on PATH): pip install 'dvc>=3.50' (oodflow needs it)")
    return found


def _check_dvc_repo(dvc: str, workdir: Path) -> None:
    proc = subprocess.run([dvc, "root"], cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrackError(
            f"{workdir.resolve()} is not inside a DVC repository: run `git init && dvc init` there first "
            f"(and `dvc remote add -d <name> <url>` to push)\n{proc.stderr.strip()}"
        )


def track(config_path: str | Path, workdir: str | Path = ".", dvc: str | None = None) -> TrackResult:
    """``dvc add`` (one call) every complete versioned folder of the datasets the config needs, and
    the folder of every pretrained weights file its runs read (``resources/weights/<name>``).

    Incomplete or missing folders are skipped and reported. ``dvc add`` writes ``<folder>.dvc``
    beside each folder (and a ``.gitignore`` entry, unless git already ignores the folder, as this
    repository's ``.gitignore`` does); :attr:`TrackResult.git_add` lists what to commit.

    Raises:
        TrackError: no ``dvc``; ``workdir`` is not in a DVC repository; nothing is complete;
            ``dvc add`` failed.
    """
    from oodflow.models.weights import weights_file

    workdir = Path(workdir)
    names = config_datasets(config_path)
    weights = config_weights(config_path)
    dvc = _find_dvc(dvc)
    _check_dvc_repo(dvc, workdir)
    added, skipped = [], []
    for name in names:
        state = dataset_state(name, workdir)
        for folder, done in state.complete().items():
            path = (DATASET_ROOT / name / folder).as_posix()
            if done:
                added.append(path)
            else:
                missing = "missing" if not (workdir / path).exists() else "incomplete"
                skipped.append((path, missing))
    for name in weights:  # one verified file per folder: complete when it is there
        file = weights_file(name)
        if (workdir / file).is_file():
            added.append(file.parent.as_posix())
        else:
            skipped.append((file.parent.as_posix(), "missing"))
    if not names and not weights:
        raise TrackError(f"nothing to track: {config_path} needs no catalog dataset (embedded benchmark)")
    if not added:
        raise TrackError(
            f"nothing to track: no dataset of {config_path} is downloaded and prepared in "
            f"{workdir.resolve()}; run `snakemake --cores 4 datasets --configfile {config_path}` first"
        )
    proc = subprocess.run([dvc, "add", *added], cwd=workdir)
    if proc.returncode != 0:
        raise TrackError(f"`dvc add` failed (exit status {proc.returncode}); see its message above")
    git_add = [f"{p}.dvc" for p in added]
    for folder in sorted({str(Path(p).parent) for p in added}):
        if (workdir / folder / ".gitignore").is_file():
            git_add.append(f"{folder}/.gitignore")
    return TrackResult(tuple(added), tuple(skipped), tuple(git_add))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oodflow.datasets",
        description="Show or DVC-track the paper-scale datasets a config needs.",
    )
    parser.add_argument("command", choices=("status", "track"))
    parser.add_argument("config", help="workflow config, e.g. config/papers/cifar10.yaml")
    parser.add_argument(
        "-d", "--directory", default=".", help="the workflow's working directory (default: current)"
    )
    args = parser.parse_args(argv)
    from oodflow.config import ConfigError

    try:
        if args.command == "status":
            print(format_status(status(args.config, args.directory)), end="")
            return 0
        result = track(args.config, args.directory)
    except (TrackError, ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path, why in result.skipped:
        print(f"skipped {path} ({why})", file=sys.stderr)
    print(f"tracked {len(result.added)} folders with DVC; commit the .dvc files and push the data:")
    print(f"  git add {' '.join(result.git_add)}")
    print("  dvc push")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper-scale data rules end to end: download from a local HTTP mirror, verify, unpack, parse.

A fake of the MOS iNaturalist archive (no published checksum, so its sha256 is pinned on the first
verified download) is served from 127.0.0.1; the catalog's upstream URL is never contacted
(``OODFLOW_MIRRORS`` names the local server, ``OODFLOW_MIRRORS_ONLY=1`` skips upstream).
Datasets with a published checksum cannot be faked through the download rule; their fake downloads
are placed where the rule would put them (the DVC round trip below).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

import fakes
from fakes_large import write_mos_ood
from oodflow.config import load as load_config
from oodflow.data.catalog import DATASETS, markdown_table, paper_config_table
from oodflow.data.stored import load_set
from oodflow.datasets import config_datasets
from oodflow.smoke.fakes import write_downloads, write_user_files
from test_formats_download import PACKAGING, WRITERS, package
from workflow_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


@pytest.fixture
def mirror(tmp_path):
    """Serve ``tmp_path/mirror`` on 127.0.0.1 (a random port); yields (folder, base URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def make_archive(folder: Path, tmp: Path, n: int) -> None:
    src = tmp / f"src{n}"
    write_mos_ood(src, "iNaturalist", n=n)
    (folder / "inaturalist_ood").mkdir(exist_ok=True)
    with tarfile.open(folder / "inaturalist_ood" / "iNaturalist.tar.gz", "w:gz") as tar:
        tar.add(src / "iNaturalist", arcname="iNaturalist")


def run_target(workdir: Path, env: dict, *targets: str) -> subprocess.CompletedProcess:
    config = str(ROOT / "config" / "test.yaml")
    return snakemake(workdir, *targets, "--configfile", config, cores=1, env=env, check=False)


def test_download_verify_unpack_parse_and_recover(mirror, tmp_path):
    folder, base = mirror
    make_archive(folder, tmp_path, n=3)
    work = tmp_path / "work"
    work.mkdir()
    pins = tmp_path / "checksums.json"
    env = {"OODFLOW_MIRRORS": base, "OODFLOW_MIRRORS_ONLY": "1", "OODFLOW_CHECKSUMS": str(pins)}
    target = "resources/datasets/inaturalist_ood/prepared"

    proc = run_target(work, env, target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = (work / target / "test.tsv").read_text().splitlines()
    assert rows[0] == "path\tlabel" and len(rows) == 1 + 3
    assert all(
        (work / "resources/datasets/inaturalist_ood/raw" / r.split("\t")[0]).exists() for r in rows[1:]
    )
    assert "inaturalist_ood/iNaturalist.tar.gz" in pins.read_text()  # sha256 pinned on first download

    # Upstream changes (or a corrupted transfer): the pinned sha256 refuses it, nothing is left.
    work2 = tmp_path / "work2"
    work2.mkdir()
    served = folder / "inaturalist_ood" / "iNaturalist.tar.gz"
    good = served.read_bytes()
    make_archive(folder, tmp_path, n=2)
    proc = run_target(work2, env, target)
    assert proc.returncode != 0
    log = (work2 / "logs/datasets/inaturalist_ood/download_iNaturalist.tar.gz.log").read_text()
    assert "inaturalist_ood" in log and "127.0.0.1" in log and "dvc pull" in log
    downloads = work2 / "resources/datasets/inaturalist_ood/downloads"
    assert not downloads.exists() or not any(downloads.iterdir())

    # The good file is back: the next run recovers.
    served.write_bytes(good)
    proc = run_target(work2, env, target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work2 / target / "test.tsv").read_text() == (work / target / "test.tsv").read_text()


def test_every_catalog_dataset_plans_offline(tmp_path):
    targets = [f"resources/datasets/{name}/prepared" for name in DATASETS.names()]
    proc = run_target(tmp_path, {}, "--dry-run", *targets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("rule prepare_dataset:") == len(targets)


def test_catalog_is_complete_and_readme_table_is_current():
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        assert spec.name == name and spec.resources and spec.homepage and spec.licence
        for res in spec.resources:
            assert res.urls and all(u.startswith(("http://", "https://")) for u in res.urls)
            assert res.md5 is None or (len(res.md5) == 32 and int(res.md5, 16) >= 0)
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the README's dataset table: python -m oodflow.data.catalog"
    assert paper_config_table() in readme, "regenerate the README's paper-config table (same command)"


@pytest.mark.parametrize("config", sorted((ROOT / "config" / "papers").glob("*.yaml")), ids=lambda p: p.stem)
def test_paper_config_resolves_offline(config, tmp_path):
    """Every paper config (now and later) plans its whole DAG with `snakemake -n`, offline."""
    proc = snakemake(tmp_path, "--configfile", str(config), "--dry-run", cores=1, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rule download_dataset:" in proc.stdout
    # the paper config replaces config/config.yaml: none of the default's runs leak into it
    # (sweeps add runs: compare with the validated config's runs)
    trained = set(re.findall(r"rule train:.*?wildcards: run=([\w-]+)", proc.stdout, flags=re.S))
    assert trained == set(load_config(config)["runs"])
    # the `datasets` target prepares what `python -m oodflow.datasets` lists (and tracks)
    plan = snakemake(tmp_path, "datasets", "--configfile", str(config), "--dry-run", cores=1).stdout
    prepared = re.findall(r"rule prepare_dataset:.*?wildcards: ds=(\w+)", plan, flags=re.S)
    assert sorted(prepared) == sorted(config_datasets(config))


# ------------------------------------------------------------------------------ DVC round trip
#: A catalog benchmark on fakes: array-form ID data, two list-form OOD sets (images under raw/), and
#: a parser option (the Places365 OOD subset size) passed through the config.
DVC_CONFIG = {
    "seed": 0,
    "device": "cpu",
    "benchmark": {
        "name": "cifar10",
        "image_format": "rgb32",
        "ood_sets": ["textures", "places365"],
        "train_per_class": None,
        "val_per_class": 1,
        "test_per_class": None,
        "ood_size": None,
    },
    "runs": {"r": {"model": "resnet18", "method": "ce"}},
    "scores": {"msp": {}},
    "datasets": {"places365_val": {"parser_args": {"ood_size": 5}}},
}
DVC_FAKES = {
    "cifar10": functools.partial(fakes.write_cifar10, per_batch=6, n_test=5),
    "dtd": WRITERS["dtd"],
    "places365_val": WRITERS["places365_val"],
}
STORED = ["results/cifar10/data/train.npz", "results/cifar10/data/ood/textures.npz"]
STORED += ["results/cifar10/data/ood/places365.npz"]


def place_fake_downloads(workdir: Path, tmp: Path) -> None:
    """Each dataset's resource files, packed as upstream ships them, where the download rule puts them."""
    for name, write in DVC_FAKES.items():
        layout = tmp / "layouts" / name
        layout.mkdir(parents=True)
        write(layout)
        downloads = workdir / "resources" / "datasets" / name / "downloads"
        downloads.mkdir(parents=True)
        for filename, entries in PACKAGING[name].items():
            package(layout, entries, downloads / filename)


def test_dvc_tracked_datasets_pull_without_rebuilding(tmp_path):
    """Prepare through the rules, `track`, push, delete, pull (and clone + pull): nothing reruns.

    `dvc pull` gives every file a fresh mtime; the rules read downloads and datasets as ancient(),
    and list-form raw/ folders are tracked too, so neither the prepare jobs nor the stored sets
    derived from the datasets (hence no training) run again.
    """
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not installed (it is a project dependency)")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def sh(*cmd: str, cwd: Path = repo) -> str:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    def datasets_cli(*args: str, cwd: Path = repo) -> str:
        return sh(sys.executable, "-m", "oodflow.datasets", *args, cwd=cwd)

    def plan(workdir: Path, *targets: str) -> str:
        config = str(workdir / "config.yaml")
        proc = snakemake(workdir, *targets, "--configfile", config, "--dry-run", cores=1, env=env)
        return proc.stdout + proc.stderr

    sh("git", "init", "-q")
    sh("git", "config", "user.email", "t@example.org")
    sh("git", "config", "user.name", "t")
    sh("dvc", "init", "-q")
    sh("dvc", "config", "core.analytics", "false")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / "config.yaml").write_text(yaml.safe_dump(DVC_CONFIG))
    place_fake_downloads(repo, tmp_path)
    snakemake(repo, "datasets", *STORED, "--configfile", str(repo / "config.yaml"), cores=1, env=env)
    x, _ = load_set(repo / "results/cifar10/data/ood/places365.npz")
    assert len(x) == 5  # parser_args reached the Places365 parser through the prepare rule

    out = datasets_cli("track", "config.yaml")
    versioned = {"cifar10": ("downloads", "prepared"), "dtd": ("downloads", "raw", "prepared")}
    versioned["places365_val"] = ("downloads", "raw", "prepared")
    dvc_files = [f"resources/datasets/{n}/{f}.dvc" for n, folders in versioned.items() for f in folders]
    git_add = next(line.strip() for line in out.splitlines() if line.strip().startswith("git add "))
    assert sorted(git_add.split()[2:]) == sorted(dvc_files)
    sh(*git_add.split())
    # .gitignore handling: git ignores every dataset folder, so only the .dvc files are staged
    untracked = sh("git", "status", "--porcelain", "--untracked-files=all", "resources").splitlines()
    assert sorted(line[3:] for line in untracked) == sorted(dvc_files)
    assert all(line.startswith("A  ") for line in untracked)
    table = datasets_cli("status", "config.yaml")
    assert "dtd            list   1/1        yes  yes       downloads, raw, prepared" in table, table
    sh("dvc", "remote", "add", "-d", "store", str(tmp_path / "store"))
    sh("git", "add", ".gitignore", ".dvc/config", "config.yaml")
    sh("git", "commit", "-q", "-m", "datasets")
    sh("dvc", "push")

    datasets = repo / "resources" / "datasets"
    reference = {p: p.read_bytes() for p in sorted(datasets.rglob("*")) if p.is_file()}
    stored_mtimes = [(repo / t).stat().st_mtime_ns for t in STORED]
    for name, folders in versioned.items():
        for folder in folders:
            shutil.rmtree(datasets / name / folder)
    shutil.rmtree(datasets / "cifar10" / "raw")  # array form: not versioned, not needed
    sh("dvc", "pull")
    assert {p: p.read_bytes() for p in sorted(datasets.rglob("*")) if p.is_file()} == {
        p: b for p, b in reference.items() if "cifar10/raw" not in p.as_posix()
    }
    assert "Nothing to be done" in plan(repo, "datasets", *STORED)
    assert [(repo / t).stat().st_mtime_ns for t in STORED] == stored_mtimes

    # A changed parser option re-prepares its dataset and rebuilds the sets drawn from it, only those.
    changed = {**DVC_CONFIG, "datasets": {"places365_val": {"parser_args": {"ood_size": 4}}}}
    (repo / "config.yaml").write_text(yaml.safe_dump(changed))
    jobs = [b for b in plan(repo, "datasets", *STORED).split("\n\n") if "\nrule " in f"\n{b}"]
    assert sorted(b.split("rule ")[1].split(":")[0] for b in jobs) == [
        "build_ood",
        "datasets",
        "prepare_dataset",
    ]
    assert any("ds=places365_val" in b for b in jobs) and any("ood=places365" in b for b in jobs)
    (repo / "config.yaml").write_text(yaml.safe_dump(DVC_CONFIG))

    # A colleague: a fresh clone (no Snakemake metadata), `dvc pull`, nothing to prepare.
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(repo), str(clone))
    sh("dvc", "pull", cwd=clone)
    assert "Nothing to be done" in plan(clone, "datasets")
    assert "downloads, raw, prepared" in datasets_cli("status", "config.yaml", cwd=clone)
    pulled = clone / "resources" / "datasets"
    assert {p.relative_to(pulled): p.read_bytes() for p in pulled.rglob("*") if p.is_file()} == {
        p.relative_to(datasets): b for p, b in reference.items() if "cifar10/raw" not in p.as_posix()
    }
    # ... and the check is not vacuous: an untracked raw/ would mean preparing again
    shutil.rmtree(clone / "resources/datasets/dtd/raw")
    assert "prepare_dataset" in plan(clone, "datasets")


# ------------------------------------------------------------------ user-supplied files (NUS-WIDE)
def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_nuswide_user_images_are_never_deleted_and_prepare(mirror, tmp_path):
    """NUS-WIDE's images are placed by hand at resources/datasets/nuswide/user/Flickr, outside the
    prepare rule's outputs (which Snakemake deletes before the job): they survive a failed run, a run
    and a forced rerun, and the prepared lists point at them through raw/Flickr."""
    folder, base = mirror
    write_downloads("nuswide", folder / "nuswide")
    work = tmp_path / "work"
    dataset = work / "resources" / "datasets" / "nuswide"
    env = {
        "OODFLOW_MIRRORS": base,
        "OODFLOW_MIRRORS_ONLY": "1",
        "OODFLOW_CHECKSUMS": str(tmp_path / "pins.json"),
    }
    target = "resources/datasets/nuswide/prepared"

    proc = run_target(work, env, target)  # no images yet: a clear error saying where they go
    assert proc.returncode != 0
    log = (work / "logs/datasets/nuswide/prepare.log").read_text()
    assert "resources/datasets/nuswide/user/Flickr is missing" in log and "lms.comp.nus.edu.sg" in log

    (flickr,) = write_user_files("nuswide", dataset)
    assert flickr == dataset / "user" / "Flickr"
    before = _tree_digest(flickr)
    for extra in ((), ("--forcerun", "prepare_dataset")):
        proc = run_target(work, env, target, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _tree_digest(flickr) == before  # every user image still there, unchanged
    raw = dataset / "raw"
    assert (raw / "Flickr").is_symlink() and (raw / "Flickr").resolve() == flickr.resolve()
    for split in ("train", "val", "test"):
        header, *rows = (dataset / "prepared" / f"{split}.tsv").read_text().splitlines()
        assert rows and all((raw / row.split("\t")[0]).is_file() for row in rows)

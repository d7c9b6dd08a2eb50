"""The paper-scale data rules end to end: download from a local HTTP mirror, verify, unpack, parse.

A fake of the MOS iNaturalist archive (no published checksum, so its sha256 is pinned on the first
verified download) is served from 127.0.0.1; the catalog's upstream URL is never contacted
(``OODFLOW_MIRRORS`` names the local server, ``OODFLOW_MIRRORS_ONLY=1`` skips upstream).
"""

from __future__ import annotations

import http.server
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from fakes_large import write_mos_ood
from oodflow.data.catalog import DATASETS, markdown_table, paper_config_table
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
    assert "rule train:" in proc.stdout and "rule download_dataset:" in proc.stdout

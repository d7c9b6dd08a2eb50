"""`python -m oodflow.datasets status|track`: which datasets a config needs, their state, DVC errors.

The DVC round trip through the rules is in ``test_dataset_rules.py``; here the table, the choice of
folders and every error, on hand-made dataset folders.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from oodflow import datasets as ds
from oodflow.steps import catalog_datasets

TEST_CONFIG = Path(__file__).resolve().parents[1] / "config" / "test.yaml"


def write_config(path: Path, **changes) -> Path:
    config = {
        "benchmark": {"name": "cifar10", "image_format": "rgb32", "ood_sets": ["textures", "mnist"]},
        "runs": {"r": {"model": "resnet18", "method": "ce"}},
        "scores": {"msp": {}},
        **changes,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def put(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def workspace(root: Path) -> None:
    """cifar10 downloaded, prepared and its downloads tracked; dtd downloaded only; mnist absent."""
    base = root / "resources" / "datasets"
    put(base / "cifar10" / "downloads" / "cifar-10-python.tar.gz", 1000)
    put(base / "cifar10" / "prepared" / "prepared.json", 20)
    put(base / "cifar10" / "prepared" / "train.npz", 300)
    put(base / "cifar10" / "raw" / "cifar-10-batches-py" / "data_batch_1", 5000)  # not versioned
    (base / "cifar10" / "downloads.dvc").write_text("outs: []\n")
    put(base / "dtd" / "downloads" / "dtd-r1.0.1.tar.gz", 70)
    put(base / "dtd" / "raw" / "dtd" / "images" / "a.jpg", 8)
    (base / "dtd" / "raw" / "link.txt").symlink_to("../downloads/dtd-r1.0.1.tar.gz")  # not counted


def test_config_datasets_are_the_rules_list(tmp_path):
    """ID data, OOD sets in config order, the aux pool only when a run trains on outliers."""
    plain = write_config(tmp_path / "a.yaml")
    assert ds.config_datasets(plain) == ["cifar10", "dtd", "mnist"]
    oe = write_config(tmp_path / "b.yaml", runs={"r": {"model": "resnet18", "method": "oe"}})
    assert ds.config_datasets(oe) == ["cifar10", "dtd", "mnist", "tinyimages_300k"]
    embedded = yaml.safe_load(TEST_CONFIG.read_text())
    assert ds.config_datasets(write_config(tmp_path / "c.yaml", **embedded)) == []
    from oodflow.config import load

    assert ds.config_datasets(oe) == catalog_datasets(load(oe))


def test_status_reports_presence_tracking_and_size(tmp_path):
    workspace(tmp_path)
    states = {s.name: s for s in ds.status(write_config(tmp_path / "c.yaml"), tmp_path)}
    cifar, dtd, mnist = states["cifar10"], states["dtd"], states["mnist"]
    assert (cifar.downloads, cifar.prepared_present, cifar.tracked) == ((1, 1), True, ("downloads",))
    assert cifar.folders == ("downloads", "prepared") and cifar.size == 1000 + 20 + 300
    assert cifar.complete() == {"downloads": True, "prepared": True}
    assert dtd.folders == ("downloads", "raw", "prepared") and dtd.size == 70 + 8
    assert dtd.complete() == {"downloads": True, "raw": False, "prepared": False}  # raw without prepared
    assert (mnist.downloads, mnist.size, mnist.tracked) == ((0, 4), 0, ())
    table = ds.format_status(list(states.values())).splitlines()
    assert table[0].split() == ["dataset", "form", "downloads", "raw", "prepared", "dvc-tracked", "size"]
    assert table[1].split() == ["cifar10", "array", "1/1", "-", "yes", "downloads", "1.3", "kB"]
    assert table[2].split() == ["dtd", "list", "1/1", "yes", "no", "no", "78", "B"]
    assert table[3].split() == ["mnist", "array", "0/4", "-", "no", "no", "0", "B"]


def test_human_size_uses_powers_of_1000():
    assert [ds.human_size(n) for n in (999, 1000, 1_234_567, 5 * 10**9, 10**13)] == [
        "999 B",
        "1.0 kB",
        "1.2 MB",
        "5.0 GB",
        "10000.0 GB",
    ]


# ------------------------------------------------------------------------------------- errors
def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = ds.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_track_without_dvc_says_how_to_install(tmp_path, capsys, monkeypatch):
    workspace(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = run_main(capsys, "track", str(write_config(tmp_path / "c.yaml")), "-d", str(tmp_path))
    assert code == 1 and out == ""
    assert "dvc is not installed" in err and "pip install" in err


def _need_dvc() -> str:
    dvc = shutil.which("dvc")
    if dvc is None:
        pytest.fail("dvc is not installed (it is a project dependency)")
    return dvc


def test_track_outside_a_dvc_repository_is_refused(tmp_path, capsys):
    _need_dvc()
    work = tmp_path / "work"
    work.mkdir()
    workspace(work)
    code, out, err = run_main(capsys, "track", str(write_config(tmp_path / "c.yaml")), "-d", str(work))
    assert code == 1 and "is not inside a DVC repository" in err and "dvc init" in err
    assert [p.name for p in work.rglob("*.dvc")] == ["downloads.dvc"]  # the hand-made one only


def dvc_repo(path: Path) -> Path:
    dvc = _need_dvc()
    path.mkdir()
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=path, check=True, capture_output=True)
    return path


def test_track_with_nothing_prepared_says_what_to_run(tmp_path, capsys):
    repo = dvc_repo(tmp_path / "repo")
    config = str(write_config(tmp_path / "c.yaml"))
    code, _, err = run_main(capsys, "track", config, "-d", str(repo))
    assert code == 1 and "nothing to track" in err
    assert f"snakemake --cores 4 datasets --configfile {config}" in err

    embedded = write_config(tmp_path / "e.yaml", **yaml.safe_load(TEST_CONFIG.read_text()))
    code, _, err = run_main(capsys, "track", str(embedded), "-d", str(repo))
    assert code == 1 and "needs no catalog dataset" in err


def test_track_bad_config_names_the_key(tmp_path, capsys):
    bad = write_config(tmp_path / "c.yaml", datasets={"places365": {"parser_args": {"ood_size": 5}}})
    code, _, err = run_main(capsys, "status", str(bad))
    assert code == 1 and "config error at datasets.places365: unknown dataset 'places365'" in err
    code, _, err = run_main(capsys, "status", str(tmp_path / "missing.yaml"))
    assert code == 1 and "missing.yaml" in err


def test_track_adds_complete_folders_in_one_call_and_reports_the_rest(tmp_path, capsys):
    repo = dvc_repo(tmp_path / "repo")
    workspace(repo)
    (repo / "resources/datasets/cifar10/downloads.dvc").unlink()  # hand-made, not a real .dvc file
    code, out, err = run_main(capsys, "track", str(write_config(tmp_path / "c.yaml")), "-d", str(repo))
    assert code == 0, err
    cifar, dtd = "resources/datasets/cifar10", "resources/datasets/dtd"
    dvc_files = [f"{cifar}/downloads.dvc", f"{cifar}/prepared.dvc", f"{dtd}/downloads.dvc"]
    # no .gitignore rule for the folders here, so `dvc add` writes one beside them: commit it too
    git_add = " ".join([*dvc_files, f"{cifar}/.gitignore", f"{dtd}/.gitignore"])
    assert f"  git add {git_add}\n" in out
    assert (repo / cifar / ".gitignore").read_text().splitlines() == ["/downloads", "/prepared"]
    assert sorted(p.relative_to(repo).as_posix() for p in repo.glob("resources/**/*.dvc")) == dvc_files
    for skipped in ("dtd/raw (incomplete)", "dtd/prepared (missing)", "mnist/downloads (missing)"):
        assert f"skipped resources/datasets/{skipped}" in err
    states = {s.name: s for s in ds.status(tmp_path / "c.yaml", repo)}
    assert states["cifar10"].tracked == ("downloads", "prepared") and states["dtd"].tracked == ("downloads",)

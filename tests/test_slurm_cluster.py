"""tests/slurm_cluster.py without daemons: when a cluster can run, with or without accounting, and its config.

``shutil.which`` and ``os.geteuid`` are replaced, so these run anywhere (the cluster itself is
exercised by tests/test_slurm.py where the daemons are installed).
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest

import slurm_cluster
from slurm_cluster import SlurmCluster, accounting_unavailable_reason, unavailable_reason


def _installed_except(monkeypatch, *missing: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None if name in missing else f"/usr/bin/{name}")


def _conf(path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_unavailable_reason_names_the_missing_daemons_then_asks_for_root(monkeypatch):
    _installed_except(monkeypatch, "slurmd", "munged")
    reason = unavailable_reason()
    assert "missing munged, slurmd" in reason and "apt-get install -y slurm-wlm munge" in reason
    _installed_except(monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "root" in unavailable_reason()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert unavailable_reason() is None


def test_accounting_reason_names_what_is_missing_and_how_to_install_it(monkeypatch):
    _installed_except(monkeypatch, "slurmdbd", "mariadbd", "mysqld")
    reason = accounting_unavailable_reason()
    assert "missing slurmdbd, mariadbd or mysqld;" in reason
    assert "apt-get install -y slurmdbd mariadb-server" in reason
    # Either name of a MariaDB/MySQL program will do.
    _installed_except(monkeypatch, "mariadbd", "mariadb-install-db", "mysql")
    assert accounting_unavailable_reason() is None
    _installed_except(monkeypatch, "mariadb", "mysql")
    assert "missing mariadb or mysql;" in accounting_unavailable_reason()


def test_cluster_without_slurmdbd_falls_back_to_no_accounting(monkeypatch, tmp_path):
    _installed_except(monkeypatch, "slurmdbd")
    cluster = SlurmCluster(tmp_path)
    assert not cluster.accounting and "missing slurmdbd" in cluster.no_accounting_reason
    cluster.write_config()
    assert _conf(cluster.conf)["AccountingStorageType"] == "accounting_storage/none"
    assert not cluster.dbd_conf.exists()
    assert cluster.running() == [] and cluster.status_queries("sacct") == []
    cluster.stop()  # nothing started: nothing to stop, no error

    _installed_except(monkeypatch)
    off = SlurmCluster(tmp_path / "off", accounting=False)
    assert not off.accounting and "accounting=False" in off.no_accounting_reason


def test_cluster_with_accounting_points_slurmctld_at_its_slurmdbd(monkeypatch, tmp_path):
    _installed_except(monkeypatch)
    cluster = SlurmCluster(tmp_path)
    assert cluster.accounting and cluster.no_accounting_reason is None
    cluster.write_config()
    slurm, dbd = _conf(cluster.conf), _conf(cluster.dbd_conf)
    assert stat.S_IMODE(cluster.dbd_conf.stat().st_mode) == 0o600  # slurmdbd refuses anything else
    assert slurm["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert slurm["AccountingStorageHost"] == dbd["DbdAddr"] == "127.0.0.1"
    assert slurm["AccountingStoragePort"] == dbd["DbdPort"]
    # Both ends authenticate through this cluster's munged, not the system's.
    assert slurm["AccountingStoragePass"] == str(cluster.munge_socket)
    assert dbd["AuthInfo"] == f"socket={cluster.munge_socket}"
    assert dbd["StoragePort"] == str(cluster.db_port) != dbd["DbdPort"]
    assert dbd["StorageLoc"] == slurm_cluster.DATABASE and dbd["StorageType"] == "accounting_storage/mysql"
    assert "gres/gpu" in slurm["AccountingStorageTRES"].split(",")
    assert dbd["PidFile"] == str(tmp_path / "run" / "slurmdbd.pid")
    # The status-query shims record their calls and run the real tool.
    shim = (tmp_path / "bin" / "sacct").read_text()
    assert f"{tmp_path}/calls/sacct.txt" in shim and 'exec /usr/bin/sacct "$@"' in shim


@pytest.mark.parametrize("accounting", [True, False])
def test_stop_order_ends_with_munged_and_covers_every_daemon(monkeypatch, tmp_path, accounting):
    _installed_except(monkeypatch)
    cluster = SlurmCluster(tmp_path, accounting=accounting)
    assert set(cluster._pidfiles) <= set(slurm_cluster.STOP_ORDER)
    assert slurm_cluster.STOP_ORDER[-1] == "munged"  # the others authenticate through it while stopping
    assert ("mariadbd" in cluster._pidfiles) is accounting

"""A throw-away single-node SLURM cluster on this machine (tests only).

Everything lives in one temporary directory: a fresh munge key and socket, ``slurm.conf``,
``cgroup.conf`` and ``gres.conf``, the daemons' state, spool, pid and log files. The daemons
(``munged``, ``slurmctld``, ``slurmd``) listen on loopback only, on free ports, and are started
directly (no systemd) with the config given by path; clients find it through ``SLURM_CONF``. The
node offers one stand-in GPU (a GRES whose device file is /dev/null), so that ``gpu=1`` rules are submitted
with ``--gpus=1`` exactly as on a real cluster; the job itself runs wherever torch finds a device.

Accounting: there is no ``slurmdbd``. ``sacct`` then has nothing to answer from, so job status is
read with ``squeue`` (``MinJobAge`` keeps finished jobs visible for 10 minutes) and every finished
job is recorded by ``jobcomp/filetxt`` in ``jobcomp.log`` (:meth:`SlurmCluster.completed_jobs`).

Run as a script to try it by hand: ``sudo python tests/slurm_cluster.py`` starts a cluster, prints
the ``export SLURM_CONF=...`` line and waits for Ctrl-C, then stops the daemons.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
NODE = "localhost"


class ClusterUnavailable(RuntimeError):
    """The daemons cannot be started here (not installed, not root, ...): a reason to skip."""


def unavailable_reason() -> str | None:
    """Why no cluster can be started on this machine, or None if it can be tried."""
    missing = [d for d in (*DAEMONS, "sbatch", "squeue", "scontrol") if shutil.which(d) is None]
    if missing:
        return (
            f"SLURM/munge not installed (missing {', '.join(missing)}; "
            "Debian: apt-get install -y slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        return "the SLURM daemons must be started as root (slurmd runs jobs as their submitting user)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SlurmCluster:
    """Single-node cluster under ``root``; use as a context manager (stops the daemons on exit)."""

    def __init__(self, root: Path, cpus: int = 8, memory_mb: int = 32000, gpus: int = 1):
        self.root = Path(root).resolve()
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.jobcomp = self.root / "jobcomp.log"
        self._pidfiles = {d: self.root / "run" / f"{d}.pid" for d in DAEMONS}

    # -- environment ------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, snakemake) needs to talk to this cluster.

        ``bin/srun`` comes first on PATH: the jobstep plugin (0.6) runs each job's ``srun`` with
        every ``SLURM_*`` variable removed, SLURM_CONF included, so that real ``srun`` would look for
        /etc/slurm/slurm.conf (where a real cluster keeps it). The shim puts SLURM_CONF back.
        """
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    # -- configuration ----------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("munge", "run", "log", "state", "spool", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        r = self.root
        ctld_port, slurmd_port = _free_port(), _free_port()
        self.conf.write_text(
            "\n".join(
                [
                    "# Written by tests/slurm_cluster.py: a single-node test cluster on loopback.",
                    "ClusterName=oodflowtest",
                    f"SlurmctldHost={NODE}(127.0.0.1)",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    f"StateSaveLocation={r}/state",
                    f"SlurmdSpoolDir={r}/spool",
                    f"SlurmctldPidFile={self._pidfiles['slurmctld']}",
                    f"SlurmdPidFile={self._pidfiles['slurmd']}",
                    f"SlurmctldLogFile={r}/log/slurmctld.log",
                    f"SlurmdLogFile={r}/log/slurmd.log",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "ProctrackType=proctrack/pgid",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={self.jobcomp}",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SchedulerType=sched/backfill",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "MinJobAge=600",
                    # The node offers what the config says, not what the machine has (a small CI
                    # machine can still run a job that asks for the cluster profile's 4 CPUs).
                    "SlurmdParameters=config_overrides",
                    "SchedulerParameters=sched_interval=1",
                    "MessageTimeout=30",
                    "GresTypes=gpu",
                    f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}"
                    f" Gres=gpu:{self.gpus} State=UNKNOWN",
                    f"PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        # Stand-in GPUs: scheduled like real ones (slurmd counts one per File), bound to /dev/null.
        (r / "gres.conf").write_text(
            "".join(f"NodeName={NODE} Name=gpu File=/dev/null\n" for _ in range(self.gpus))
        )
        srun = r / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n')
        os.chmod(srun, 0o755)
        (r / "cgroup.conf").write_text("# proctrack/pgid and task/none: cgroups are not used.\n")

    # -- daemons ----------------------------------------------------------------------------
    def _run(self, *cmd: str) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.client_env(), timeout=60)
        if proc.returncode != 0:
            raise ClusterUnavailable(
                f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                f"\n{self.logs()}"
            )

    def start(self, timeout: float = 60) -> None:
        reason = unavailable_reason()
        if reason:
            raise ClusterUnavailable(reason)
        self.write_config()
        r = self.root
        self._run(
            "munged", "--force",
            f"--key-file={r}/munge/munge.key", f"--socket={self.munge_socket}",
            f"--pid-file={self._pidfiles['munged']}", f"--log-file={r}/log/munged.log",
            f"--seed-file={r}/munge/munged.seed",
        )  # fmt: skip
        self._run("slurmctld", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf), "-N", NODE)
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            proc = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.client_env()
            )
            state = proc.stdout.strip() or proc.stderr.strip()
            if proc.returncode == 0 and state == "idle":
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"node not idle after {timeout:.0f} s (sinfo: {state!r})\n{self.logs()}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM every daemon this cluster started (by its pid file), then SIGKILL stragglers."""
        pids = {d: _pid(f) for d, f in self._pidfiles.items()}
        for daemon in ("slurmd", "slurmctld", "munged"):  # reverse start order
            pid = pids[daemon]
            if pid is None or not _alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def running(self) -> list[str]:
        """The daemons of this cluster that are alive."""
        return [d for d, f in self._pidfiles.items() if (pid := _pid(f)) is not None and _alive(pid)]

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------------------------
    def completed_jobs(self) -> list[dict[str, str]]:
        """The finished jobs slurmctld recorded (jobcomp/filetxt: one ``Key=Value ...`` line each)."""
        if not self.jobcomp.exists():
            return []
        jobs = []
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if fields:
                jobs.append(fields)
        return jobs

    def logs(self, tail: int = 20) -> str:
        out = []
        for log in sorted((self.root / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="slurm-") as tmp, SlurmCluster(Path(tmp)) as cluster:
        print(f"export SLURM_CONF={cluster.conf}")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass

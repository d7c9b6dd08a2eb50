"""A throw-away single-node SLURM cluster on this machine (tests only).

Everything lives in one temporary directory: a fresh munge key and socket, ``slurm.conf``,
``cgroup.conf`` and ``gres.conf``, the daemons' state, spool, pid and log files. The daemons
(``munged``, ``slurmctld``, ``slurmd``) listen on loopback only, on free ports, and are started
directly (no systemd) with the config given by path; clients find it through ``SLURM_CONF``. The
node offers one stand-in GPU (a GRES whose device file is /dev/null), so that ``gpu=1`` rules are submitted
with ``--gpus=1`` exactly as on a real cluster; the job itself runs wherever torch finds a device.

Accounting: where ``slurmdbd`` and a MariaDB/MySQL server are installed (Debian: ``apt-get install
-y slurmdbd mariadb-server``), the cluster also runs a private database server (its own data
directory, unix socket in the temporary directory and a free loopback port) and ``slurmdbd`` on it,
so that ``sacct`` answers as on a real cluster; the cluster is registered with ``sacctmgr`` before
``slurmctld`` starts. Without them (or with ``accounting=False``) there is no accounting: ``sacct``
has nothing to answer from, so job status is read with ``squeue`` (``MinJobAge`` keeps finished
jobs visible for 10 minutes). In both cases every finished job is also recorded by
``jobcomp/filetxt`` in ``jobcomp.log`` (:meth:`SlurmCluster.completed_jobs`).

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
ACCOUNTING_DAEMONS = ("mariadbd", "slurmdbd")  # pid files are keyed by these names
STOP_ORDER = ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged")  # reverse start order
NODE = "localhost"
STATUS_TOOLS = ("sacct", "squeue")  # clients' calls of these are recorded (status_queries)
CLUSTER = "oodflowtest"
DATABASE = "slurm_acct_db"
# Either name of each MariaDB/MySQL program (Debian's mariadb-server installs both).
DB_SERVER = ("mariadbd", "mysqld")
DB_INSTALL = ("mariadb-install-db", "mysql_install_db")
DB_CLIENT = ("mariadb", "mysql")


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


def _first_installed(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name)) is not None), None)


def accounting_unavailable_reason() -> str | None:
    """Why this machine's cluster would run without ``slurmdbd`` accounting, or None if it can have it.

    Only the accounting part: :func:`unavailable_reason` says whether a cluster can run at all.
    """
    missing = [d for d in ("slurmdbd", "sacctmgr", "sacct") if shutil.which(d) is None]
    missing += [
        " or ".join(names) for names in (DB_SERVER, DB_INSTALL, DB_CLIENT) if not _first_installed(names)
    ]
    if missing:
        return (
            f"no SLURM accounting (missing {', '.join(missing)}; "
            "Debian: apt-get install -y slurmdbd mariadb-server)"
        )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:  # a child of this process (mariadbd) that has exited is reaped here, not counted as alive
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SlurmCluster:
    """Single-node cluster under ``root``; use as a context manager (stops the daemons on exit)."""

    def __init__(
        self, root: Path, cpus: int = 8, memory_mb: int = 32000, gpus: int = 1, accounting: bool | None = None
    ):
        """``accounting``: run slurmdbd (True), not (False), or where it is installed (None)."""
        self.root = Path(root).resolve()
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.conf = self.root / "slurm.conf"
        self.dbd_conf = self.root / "slurmdbd.conf"  # slurmdbd reads it beside $SLURM_CONF
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.db_socket = self.root / "db" / "mysqld.sock"
        self.jobcomp = self.root / "jobcomp.log"
        self.no_accounting_reason = accounting_unavailable_reason() if accounting is None else None
        if accounting is False:
            self.no_accounting_reason = "accounting turned off (SlurmCluster(accounting=False))"
        self.accounting = self.no_accounting_reason is None
        daemons = (*DAEMONS, *ACCOUNTING_DAEMONS) if self.accounting else DAEMONS
        self._pidfiles = {d: self.root / "run" / f"{d}.pid" for d in daemons}
        self._db_server: subprocess.Popen | None = None  # mariadbd runs in the foreground, as a child

    # -- environment ------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, snakemake) needs to talk to this cluster.

        ``bin/srun`` comes first on PATH: the jobstep plugin (0.6) runs each job's ``srun`` with
        every ``SLURM_*`` variable removed, SLURM_CONF included, so that real ``srun`` would look for
        /etc/slurm/slurm.conf (where a real cluster keeps it). The shim puts SLURM_CONF back.
        ``bin/sacct`` and ``bin/squeue`` record their arguments (:meth:`status_queries`) and run the
        real tools.
        """
        return {"SLURM_CONF": str(self.conf), "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    # -- configuration ----------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("munge", "run", "log", "state", "spool", "bin", "calls"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        r = self.root
        ctld_port, slurmd_port = _free_port(), _free_port()
        if self.accounting:
            self.dbd_port, self.db_port = _free_port(), _free_port()
            accounting = [
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={self.dbd_port}",
                # With slurmdbd this is the munge socket its clients (slurmctld, sacct, sacctmgr)
                # authenticate through; AuthInfo is not used for that connection.
                f"AccountingStoragePass={self.munge_socket}",
                "AccountingStorageTRES=gres/gpu",  # sacct's ReqTRES/AllocTRES then list the GPU
                "AccountingStoreFlags=job_comment",  # ... and its Comment the plugin's rule name
            ]
            self._write_dbd_config()
        else:
            accounting = ["AccountingStorageType=accounting_storage/none"]
        self.conf.write_text(
            "\n".join(
                [
                    "# Written by tests/slurm_cluster.py: a single-node test cluster on loopback.",
                    f"ClusterName={CLUSTER}",
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
                    *accounting,
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
        for tool in STATUS_TOOLS:  # record, then run, every status query a client makes
            shim = r / "bin" / tool
            shim.write_text(f'#!/bin/sh\necho "$*" >> {r}/calls/{tool}.txt\nexec {shutil.which(tool)} "$@"\n')
            os.chmod(shim, 0o755)
        (r / "cgroup.conf").write_text("# proctrack/pgid and task/none: cgroups are not used.\n")

    def _write_dbd_config(self) -> None:
        """slurmdbd.conf: slurmdbd on loopback, storing into the private database server over TCP.

        slurmdbd (22.05) reaches MySQL only by host and port, so the server listens on 127.0.0.1
        (a free port) besides its socket; the password is fresh per cluster. slurmdbd refuses a
        slurmdbd.conf that is not mode 600 and owned by SlurmUser (root here).
        """
        self.db_password = secrets.token_hex(16)
        r = self.root
        self.dbd_conf.touch(mode=0o600)
        os.chmod(self.dbd_conf, 0o600)
        self.dbd_conf.write_text(
            "\n".join(
                [
                    "# Written by tests/slurm_cluster.py: the test cluster's accounting daemon.",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.dbd_port}",
                    "SlurmUser=root",
                    f"PidFile={self._pidfiles['slurmdbd']}",
                    f"LogFile={r}/log/slurmdbd.log",
                    "DebugLevel=info",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.db_port}",
                    "StorageUser=slurm",
                    f"StoragePass={self.db_password}",
                    f"StorageLoc={DATABASE}",
                    "",
                ]
            )
        )

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
        if self.accounting:  # slurmctld registers with slurmdbd when it starts: the database comes first
            self._start_database(timeout)
            self._start_slurmdbd(timeout)
        self._run("slurmctld", "-f", str(self.conf))
        self._run("slurmd", "-f", str(self.conf), "-N", NODE)
        self.wait_idle(timeout)

    def _sql(self, statement: str) -> subprocess.CompletedProcess:
        """Run ``statement`` as the database's root, over its unix socket (root's socket login)."""
        client = _first_installed(DB_CLIENT)
        return subprocess.run(
            [client, "--no-defaults", f"--socket={self.db_socket}", "--user=root", "-e", statement],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def _start_database(self, timeout: float) -> None:
        """A private MariaDB/MySQL server: its own data directory, socket and loopback port, no my.cnf."""
        r = self.root
        data = r / "db" / "data"
        data.parent.mkdir(exist_ok=True)
        server_binary = _first_installed(DB_SERVER)
        basedir = Path(server_binary).resolve().parent.parent  # /usr for /usr/sbin/mariadbd
        # Small redo log and buffer pool: the accounting tables of a few test jobs are tiny.
        server_options = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M"]
        self._run(
            _first_installed(DB_INSTALL), "--no-defaults", "--user=root", f"--basedir={basedir}",
            f"--datadir={data}", "--auth-root-authentication-method=socket", "--skip-test-db",
            *server_options,
        )  # fmt: skip
        with open(r / "log" / "mariadbd.log", "ab") as log:
            server = subprocess.Popen(
                [
                    server_binary, "--no-defaults", "--user=root", f"--datadir={data}",
                    f"--socket={self.db_socket}", "--bind-address=127.0.0.1", f"--port={self.db_port}",
                    "--skip-name-resolve", f"--pid-file={self._pidfiles['mariadbd']}",
                    f"--log-error={r / 'log' / 'mariadbd.log'}", *server_options,
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        self._db_server = server
        self._wait(
            lambda: self._sql("SELECT 1").returncode == 0,
            timeout, "the database server did not answer on its socket", "mariadbd",
        )  # fmt: skip
        # slurmdbd's login: over TCP from 127.0.0.1 (--skip-name-resolve: matched by address).
        proc = self._sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';"
            f" GRANT ALL ON {DATABASE}.* TO 'slurm'@'127.0.0.1';"
        )
        if proc.returncode != 0:
            raise ClusterUnavailable(f"creating the database user failed: {proc.stderr}\n{self.logs()}")

    def _start_slurmdbd(self, timeout: float) -> None:
        """slurmdbd (it creates its tables before it listens, a few seconds), then the cluster."""
        self._run("slurmdbd")  # finds slurmdbd.conf beside $SLURM_CONF (client_env)
        self._wait(
            lambda: _listening(self.dbd_port), timeout, "slurmdbd did not listen on its port", "slurmdbd"
        )  # fmt: skip
        # Registering the cluster also gives it the account root with the user root (jobs' account).
        self._run("sacctmgr", "-i", "add", "cluster", CLUSTER)

    def _wait(self, ready, timeout: float, what: str, daemon: str) -> None:
        """Poll ``ready()`` until true; raise with ``what`` and the logs on timeout or if ``daemon`` died."""
        deadline = time.monotonic() + timeout
        while not ready():
            # mariadbd is this process's child from the start; slurmdbd counts once it wrote its pid file
            started = daemon == "mariadbd" or self._pidfiles[daemon].exists()
            if started and daemon not in self.running():
                raise ClusterUnavailable(f"{what}: the process exited\n{self.logs()}")
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{what} within {timeout:.0f} s\n{self.logs()}")
            time.sleep(0.3)

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
        if pids.get("mariadbd") is None and self._db_server is not None:
            pids["mariadbd"] = self._db_server.pid  # died or not started before writing its pid file
        for daemon in STOP_ORDER:
            pid = pids.get(daemon)
            if pid is None or not _alive(pid):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self._db_server is not None:  # reap it
            try:
                self._db_server.wait(timeout)
            except subprocess.TimeoutExpired:
                pass

    def running(self) -> list[str]:
        """The daemons of this cluster that are alive."""
        alive = [d for d, f in self._pidfiles.items() if (pid := _pid(f)) is not None and _alive(pid)]
        server = self._db_server
        if server is not None and server.poll() is None and "mariadbd" not in alive:
            alive.append("mariadbd")
        return alive

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

    def status_queries(self, tool: str) -> list[str]:
        """The arguments of every ``tool`` (sacct or squeue) call made through ``env``'s PATH, in order."""
        calls = self.root / "calls" / f"{tool}.txt"
        return calls.read_text().splitlines() if calls.exists() else []

    def sacct(self, job_ids, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """``sacct -X`` (allocations only) for ``job_ids``: {job id: {field: value}}.

        With ``-j`` sacct searches from the epoch (its default window is today only). The real
        sacct is called, so that this query is not among :meth:`status_queries`.
        """
        proc = subprocess.run(
            [shutil.which("sacct"), "-X", "--noheader", "--parsable2", f"--format={','.join(fields)}",
             "-j", ",".join(job_ids)],
            capture_output=True, text=True, env=self.client_env(), timeout=60,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"sacct failed ({proc.returncode}): {proc.stderr.strip()}\n{self.logs()}")
        rows = [dict(zip(fields, line.split("|"), strict=True)) for line in proc.stdout.splitlines() if line]
        return {row[fields[0]]: row for row in rows}

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
        print(
            "accounting: slurmdbd"
            if cluster.accounting
            else f"accounting: none ({cluster.no_accounting_reason})"
        )
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass

"""The DAG's first rules through a real SLURM cluster (tests/slurm_cluster.py) and the executor plugin.

A single-node cluster is started on this machine (loopback only, config in a temporary directory);
Snakemake submits the embedded config's ``build_id`` and ``train`` jobs with ``--workflow-profile
profiles/slurm``. The test checks that slurmctld ran them (its job-completion log and ``squeue``
list them under the run's SLURM job name, with the time, memory, CPUs and GPU the rules ask for)
and that their outputs are byte-identical to a local run's. Skipped, with the reason, where the
daemons cannot be started: SLURM/munge not installed (``apt-get install -y slurm-wlm munge``), not
root, or the plugin missing (``pip install -e ".[slurm]"``).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from oodflow import cluster as cluster_resources
from oodflow import config as oodflow_config
from slurm_cluster import ClusterUnavailable, SlurmCluster, unavailable_reason
from workflow_runner import ROOT, snakemake

pytestmark = pytest.mark.e2e

OUT = "results/mnist5k"
DATA = [f"{OUT}/data/{split}.{ext}" for split in ("train", "val", "test") for ext in ("npz", "json")]
TRAIN = [f"{OUT}/runs/tiny/model.pt", f"{OUT}/runs/tiny/train_log.csv"]
TARGETS = [*DATA, *TRAIN]
CONFIG = str(ROOT / "config" / "test.yaml")
# The profile as a cluster user runs it, made quick for a test: status from squeue (no slurmdbd
# here, see slurm_cluster.py), first status check after 1 s, no retries, SLURM logs kept.
SLURM_ARGS = [
    "--workflow-profile", str(ROOT / "profiles" / "slurm"),
    "--jobs", "1",
    "--retries", "0",
    "--latency-wait", "5",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
]  # fmt: skip


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip('snakemake-executor-plugin-slurm not installed (pip install -e ".[slurm]")')
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    test_cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        test_cluster.start()
    except ClusterUnavailable as err:
        test_cluster.stop()
        pytest.skip(f"the SLURM daemons could not be started: {err}")
    try:
        yield test_cluster
    finally:
        test_cluster.stop()
    assert not test_cluster.running(), f"daemons left running: {test_cluster.running()}"


def _jobs_named(cluster: SlurmCluster, name: str) -> dict[str, dict[str, str]]:
    return {job["JobId"]: job for job in cluster.completed_jobs() if job["Name"] == name}


def test_first_rules_through_slurm_equal_a_local_run(slurm, tmp_path):
    on_cluster, local = tmp_path / "slurm", tmp_path / "local"
    on_cluster.mkdir()
    local.mkdir()
    proc = snakemake(on_cluster, *TARGETS, *SLURM_ARGS, "--configfile", CONFIG, env=slurm.env)
    log = proc.stdout + proc.stderr
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert len(submitted) == 2, log

    # slurmctld ran both jobs under the run's job name, to completion.
    jobs = _jobs_named(slurm, run_id)
    assert sorted(jobs) == sorted(submitted.values()), (jobs, submitted)
    assert {job["JobState"] for job in jobs.values()} == {"COMPLETED"}
    # ... and squeue, which the plugin asked for their state, still lists them (MinJobAge).
    squeue = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%j", "--name", run_id],
        capture_output=True, text=True, env=slurm.client_env(), check=True,
    ).stdout  # fmt: skip
    assert {line.split("|")[0] for line in squeue.split()} == set(jobs)

    # The train job asked for what oodflow.cluster estimates for the run, and for one GPU.
    config = oodflow_config.validate(yaml.safe_load(Path(CONFIG).read_text()))
    want = cluster_resources.run_resources(config, "tiny")
    train_id = next(i for i, job in jobs.items() if "rule_train" in _comment(slurm, i))
    train = jobs[train_id]
    assert int(train["TimeLimit"]) == want["runtime"]
    assert f"cpu={want['cpus_per_task']}" in train["Tres"]
    assert f"mem={want['mem_mb']}M" in train["Tres"]
    assert re.search(r"gres[/:]gpu[:=]1", _scontrol(slurm, train_id)), _scontrol(slurm, train_id)

    snakemake(local, *TARGETS, "--configfile", CONFIG)
    for target in TARGETS:
        assert (on_cluster / target).read_bytes() == (local / target).read_bytes(), target


def _scontrol(cluster: SlurmCluster, job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", "-d", job_id],
        capture_output=True, text=True, env=cluster.client_env(), check=True,
    ).stdout  # fmt: skip


def _comment(cluster: SlurmCluster, job_id: str) -> str:
    """The plugin's ``--comment`` (``rule_<name>_wildcards_<...>``) of a job."""
    return re.search(r"Comment=(\S*)", _scontrol(cluster, job_id)).group(1)

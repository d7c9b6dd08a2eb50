"""The DAG's first rules through a real SLURM cluster (tests/slurm_cluster.py) and the executor plugin.

A single-node cluster is started on this machine (loopback only, config in a temporary directory);
Snakemake submits the embedded config's ``build_id`` and ``train`` jobs with ``--workflow-profile
profiles/slurm``, once per module. The tests check that

* slurmctld ran both jobs to completion under the run's SLURM job name (its job-completion log);
* with accounting (``slurmdbd`` + MariaDB installed): the plugin read their states with its default,
  ``sacct``, and ``sacct`` records each job as COMPLETED with exit code 0:0 and the time limit,
  memory, CPUs and GPU the rules ask for (``oodflow.cluster`` for ``train``, the profile's defaults
  for ``build_id``). Without accounting this test is skipped with the reason, and the run uses the
  plugin's ``squeue`` status command instead;
* ``scontrol`` shows the train job's time limit, CPUs, memory and GPU (both modes);
* the outputs are byte-identical to a local run's.

The whole module is skipped, with the reason, where the daemons cannot be started: SLURM/munge not
installed (``apt-get install -y slurm-wlm munge``), not root, or the plugin missing (``pip install
-e ".[slurm]"``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
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
PROFILE = ROOT / "profiles" / "slurm"
# The profile as a cluster user runs it, made quick for a test: first status check after 1 s, no
# retries, SLURM logs kept. The status command is the plugin's default (sacct) where the cluster
# has accounting; without it, squeue (see slurm_cluster.py).
SLURM_ARGS = [
    "--workflow-profile", str(PROFILE),
    "--jobs", "1",
    "--retries", "0",
    "--latency-wait", "5",
    "--slurm-init-seconds-before-status-checks", "1",
    "--slurm-keep-successful-logs",
]  # fmt: skip
SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "TimelimitRaw", "ReqCPUS", "ReqTRES", "AllocTRES",
                "Comment")  # fmt: skip


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


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The first rules run once through the cluster: its work dir, run ID and {snakemake job: SLURM id}."""
    workdir = tmp_path_factory.mktemp("on_slurm")
    status = [] if slurm.accounting else ["--slurm-status-command", "squeue"]
    proc = snakemake(workdir, *TARGETS, *SLURM_ARGS, *status, "--configfile", CONFIG, env=slurm.env)
    log = proc.stdout + proc.stderr
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert len(submitted) == 2, log
    return {"workdir": workdir, "run_id": run_id, "job_ids": sorted(submitted.values()), "log": log}


def test_slurmctld_completed_both_jobs(slurm, slurm_run):
    jobs = {job["JobId"]: job for job in slurm.completed_jobs() if job["Name"] == slurm_run["run_id"]}
    assert sorted(jobs) == slurm_run["job_ids"], (jobs, slurm_run["job_ids"])
    assert {job["JobState"] for job in jobs.values()} == {"COMPLETED"}
    if not slurm.accounting:  # ... and squeue, which the plugin asked for their state, still lists them
        assert any(slurm_run["run_id"] in call for call in slurm.status_queries("squeue"))
        squeue = subprocess.run(
            [shutil.which("squeue"), "--states=all", "--noheader", "--format=%i|%T|%j",
             "--name", slurm_run["run_id"]],
            capture_output=True, text=True, env=slurm.client_env(), check=True,
        ).stdout  # fmt: skip
        assert {line.split("|")[0] for line in squeue.split()} == set(jobs)


def test_sacct_records_each_job_completed_with_its_limits(slurm, slurm_run):
    if not slurm.accounting:
        pytest.skip(f"sacct part only: {slurm.no_accounting_reason}; the run used squeue")
    # The plugin read the jobs' states with its default status command: sacct, by the run's name.
    assert any(f"--name {slurm_run['run_id']}" in call for call in slurm.status_queries("sacct")), (
        slurm.status_queries("sacct")
    )
    jobs = slurm.sacct(slurm_run["job_ids"], SACCT_FIELDS)
    assert sorted(jobs) == slurm_run["job_ids"], jobs
    for job in jobs.values():
        assert (job["JobName"], job["State"]) == (slurm_run["run_id"], "COMPLETED"), job
        assert job["ExitCode"] == "0:0", job
    by_rule = {re.match(r"rule_(.+?)(_wildcards_|$)", job["Comment"]).group(1): job for job in jobs.values()}
    assert sorted(by_rule) == ["build_id", "train"], jobs

    # train: what oodflow.cluster estimates for the run, and one GPU, asked for and allocated.
    config = oodflow_config.validate(yaml.safe_load(Path(CONFIG).read_text()))
    want = cluster_resources.run_resources(config, "tiny")
    train = by_rule["train"]
    assert int(train["TimelimitRaw"]) == want["runtime"]
    assert int(train["ReqCPUS"]) == want["cpus_per_task"]
    for tres in ("ReqTRES", "AllocTRES"):
        items = _tres(train[tres])
        assert (items["cpu"], items["mem"], items["gres/gpu"]) == (
            str(want["cpus_per_task"]), f"{want['mem_mb']}M", "1",
        ), (tres, train)  # fmt: skip
    # build_id: the profile's default runtime and memory, no GPU.
    defaults = yaml.safe_load((PROFILE / "config.yaml").read_text())["default-resources"]
    build = by_rule["build_id"]
    assert int(build["TimelimitRaw"]) == defaults["runtime"]
    assert _tres(build["ReqTRES"])["mem"] == f"{defaults['mem_mb']}M"
    assert "gres/gpu" not in _tres(build["AllocTRES"]), build


def test_train_job_held_its_limits_and_a_gpu(slurm, slurm_run):
    """slurmctld's own records (job-completion log, ``scontrol show job``) of the train job."""
    config = oodflow_config.validate(yaml.safe_load(Path(CONFIG).read_text()))
    want = cluster_resources.run_resources(config, "tiny")
    shown = {job_id: _scontrol(slurm, job_id) for job_id in slurm_run["job_ids"]}
    train_id = next(job_id for job_id, text in shown.items() if "Comment=rule_train_" in text)
    train = next(job for job in slurm.completed_jobs() if job["JobId"] == train_id)
    assert int(train["TimeLimit"]) == want["runtime"]
    assert f"cpu={want['cpus_per_task']}" in train["Tres"]
    assert f"mem={want['mem_mb']}M" in train["Tres"]
    assert re.search(r"gres[/:]gpu[:=]1", shown[train_id]), shown[train_id]


def test_outputs_equal_a_local_run(slurm_run, tmp_path):
    snakemake(tmp_path, *TARGETS, "--configfile", CONFIG)
    for target in TARGETS:
        assert (slurm_run["workdir"] / target).read_bytes() == (tmp_path / target).read_bytes(), target


def _tres(text: str) -> dict[str, str]:
    """``billing=4,cpu=4,gres/gpu=1,mem=5000M,node=1`` -> {"cpu": "4", ...}."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def _scontrol(cluster: SlurmCluster, job_id: str) -> str:
    return subprocess.run(
        ["scontrol", "show", "job", "-d", job_id],
        capture_output=True, text=True, env=cluster.client_env(), check=True,
    ).stdout  # fmt: skip

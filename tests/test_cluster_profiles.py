"""Cluster resources (oodflow.cluster) and the workflow profiles (profiles/slurm, profiles/local)."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest
import yaml

from oodflow import cluster
from oodflow.config import validate
from oodflow.steps import run_config
from workflow_runner import ROOT, snakemake

PAPERS = ROOT / "config" / "papers"
HAS_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None
#: Resources Snakemake itself defines (the local scheduler, storage, the default resources).
SNAKEMAKE_RESOURCES = {"runtime", "mem_mb", "mem", "disk_mb", "disk", "tmpdir", "threads", "_cores", "_nodes"}


def paper(name: str) -> dict:
    return validate(yaml.safe_load((PAPERS / f"{name}.yaml").read_text()))


def test_wrn_cifar10_runtime_is_the_documented_closed_form():
    # 49,000 images (50,000 minus 100 per class held out), 100 epochs at 2,005.7 images/s, x2 safety.
    res = cluster.run_resources(paper("aoe_cifar10"), "baseline")
    assert res["runtime"] == math.ceil(2 * 100 * 49000 / 2005.7 / 60) + 10 == 92
    assert res["cpus_per_task"] == cluster.TRAIN_CPUS
    # train + val as float32: 50,000 x 3,072 values x 4 bytes = 614 MB -> 1,000 MB over the base.
    assert res["mem_mb"] == cluster.BASE_MEM_MB + 1000


def test_food101_outlier_fine_tuning_costs_double_and_holds_the_pool():
    config = paper("food101")
    n = 75750 - 50 * 101
    assert cluster.run_resources(config, "baseline")["runtime"] == math.ceil(2 * 100 * n / 1656.6 / 60) + 10
    energy = cluster.run_resources(config, "energy_ft")
    assert energy["runtime"] == math.ceil(2 * 10 * n * 2 / 1656.6 / 60) + 10
    # train + val + the 300K random images, 64x64x3 float32.
    assert energy["mem_mb"] == cluster.BASE_MEM_MB + 1000 * math.ceil(4 * (n + 5050 + 300000) * 12288 / 1e9)
    hpo = cluster.run_resources(config, "energy_ft", job="hpo")
    assert hpo["runtime"] == 20 * (math.ceil(2 * 3 * n * 2 / 1656.6 / 60) + 10)


def test_run_resources_override_the_estimate_and_retries_get_more_time():
    config = paper("cifar10")
    config["runs"]["baseline"]["resources"] = {"runtime": 300, "mem_mb": 12000}
    res = cluster.run_resources(config, "baseline", attempt=2)
    assert res["runtime"] == 600
    assert res["mem_mb"] == 12000
    assert res["cpus_per_task"] == cluster.TRAIN_CPUS  # not given: estimated


def test_resources_are_not_part_of_the_run():
    """Changing what a cluster grants a run must not retrain it (params, checkpoints)."""
    config = paper("cifar10")
    before = run_config(config, "baseline")
    config["runs"]["baseline"]["resources"] = {"runtime": 300}
    assert run_config(config, "baseline") == before


def test_schema_rejects_unknown_resource_keys():
    raw = yaml.safe_load((PAPERS / "cifar10.yaml").read_text())
    raw["runs"]["baseline"]["resources"] = {"walltime": 60}
    with pytest.raises(Exception, match="walltime"):
        validate(raw)


def test_paper_dry_run_shows_the_estimated_resources(tmp_path):
    """`snakemake -n` on a paper config lists the train job with gpu=1 and the estimate."""
    proc = snakemake(tmp_path, "-n", "--configfile", str(PAPERS / "aoe_cifar10.yaml"))
    block = re.search(
        r"rule train:\n(?:    .*\n)*?    wildcards: run=baseline\n(?:    .*\n)*?    resources: (.*)",
        proc.stdout,
    )
    assert block, proc.stdout[-3000:]
    resources = dict(item.split("=", 1) for item in block.group(1).split(", "))
    assert resources["gpu"] == "1"
    assert resources["runtime"] == "92"
    assert resources["cpus_per_task"] == str(cluster.TRAIN_CPUS)


def _profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


def _plugin_resources() -> set[str]:
    """Resource names the installed SLURM plugin reads (``resources.get("x")`` / ``resources.x``)."""
    spec = importlib.util.find_spec("snakemake_executor_plugin_slurm")
    names = set()
    for path in Path(spec.origin).parent.glob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"resources\.get\(\s*[\"'](\w+)[\"']", text))
        names |= set(re.findall(r"resources\.(\w+)\b(?!\()", text))
    return names - {"get"}


def test_profiles_parse_and_the_local_one_keeps_the_default_settings():
    default, local, slurm = _profile("default"), _profile("local"), _profile("slurm")
    assert slurm["executor"] == "slurm"
    assert "executor" not in local
    for key, value in default.items():  # a --workflow-profile replaces profiles/default
        assert local[key] == value and slurm[key] == value, key
    assert slurm["retries"] >= 1 and slurm["latency-wait"] >= 10 and slurm["jobs"] >= 1


@pytest.mark.skipif(
    not HAS_PLUGIN, reason='snakemake-executor-plugin-slurm not installed (pip install ".[slurm]")'
)
def test_slurm_profile_names_only_resources_the_plugin_reads():
    known = _plugin_resources() | SNAKEMAKE_RESOURCES
    assert {"slurm_partition", "slurm_account", "gpu", "cpus_per_task", "constraint"} <= known  # sanity
    profile_text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    named = set(_profile("slurm")["default-resources"])
    # the commented placeholders too: they are what a user uncomments
    named |= set(re.findall(r"^\s*#?\s*(\w+):\s*\"<", profile_text, flags=re.M))
    assert {"slurm_partition", "slurm_account"} <= named
    assert named <= known, named - known
    rules = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    in_rules = set(re.findall(r"^\s+(\w+)=\w+_resource\(", rules, flags=re.M)) | {"gpu"}
    assert in_rules <= known, in_rules - known


@pytest.mark.skipif(
    not HAS_PLUGIN, reason='snakemake-executor-plugin-slurm not installed (pip install ".[slurm]")'
)
def test_slurm_profile_is_accepted_by_snakemake(tmp_path):
    """Every key of the profile is a valid option (a dry run needs no cluster)."""
    proc = snakemake(
        tmp_path, "-n", "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--configfile",
        str(ROOT / "config" / "test.yaml"),
    )  # fmt: skip
    assert "Using workflow specific profile" in proc.stdout + proc.stderr

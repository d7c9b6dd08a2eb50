"""Cluster resources (oodflow.cluster) and the workflow profiles (profiles/slurm, profiles/local)."""

from __future__ import annotations

import copy
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


def _dry_run_resources(tmp_path, config: str, rule: str, wildcards: str) -> dict[str, str]:
    """The resources `snakemake -n` prints for the first job of ``rule`` with ``wildcards``."""
    proc = snakemake(tmp_path, "-n", "--configfile", str(PAPERS / f"{config}.yaml"))
    block = re.search(
        rf"rule {rule}:\n(?:    .*\n)*?    wildcards: {wildcards}\n(?:    .*\n)*?    resources: (.*)",
        proc.stdout,
    )
    assert block, proc.stdout[-3000:]
    return dict(item.split("=", 1) for item in block.group(1).split(", "))


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_derived_rates_are_the_stated_multiply_add_ratios():
    """classifier32 and ResNet-50 are not measured: their rates scale measured ones by multiply-adds,
    and the multiply-adds in the table are those of our networks (a changed network fails here)."""
    import torch

    from oodflow.models import build_model
    from oodflow.osr.networks import Classifier32

    rates, macs = cluster.H100_TRAIN_IMAGES_PER_S, cluster.MACS_M
    assert rates["classifier32"] == pytest.approx(2005.7 * 327.6 / 164.6, abs=0.05)
    assert rates["resnet50"] == pytest.approx(1407.4 * 1159.4 / 5340.4, abs=0.05)
    nets = {
        "classifier32": (Classifier32(6), 32),
        "wrn40_2": (build_model("wrn40_2", num_classes=10, in_channels=3), 32),
        "resnet34": (build_model("resnet34", num_classes=10, in_channels=3), 32),
        "resnet50_256px": (build_model("resnet50", num_classes=20, in_channels=3), 256),
    }
    with torch.no_grad():
        for name, (net, side) in nets.items():
            x = torch.zeros(1, 3, side, side)
            assert _flops(lambda net=net, x=x: net.eval()(x)) / 2e6 == pytest.approx(macs[name], rel=0.01), (
                name
            )
    # the rate of a model at another side scales with the pixels; unknown models get the default
    assert cluster.images_per_s("small_cnn", 32) == pytest.approx(15188.1 * (28 / 32) ** 2)
    assert cluster.images_per_s("classifier32", 64) == pytest.approx(rates["classifier32"] / 4)
    assert cluster.images_per_s("no_such_model", 32) == cluster.DEFAULT_IMAGES_PER_S


def test_osr_method_costs_match_a_flop_count_of_one_training_step():
    """OSR_METHOD_COST (counted pass by pass in the docstring) against torch's FLOP count of one step
    of every pass of each method, relative to softmax's; every registered method has a cost."""
    import torch

    from oodflow.osr import OSR_METHODS, build_method

    assert set(cluster.OSR_METHOD_COST) == set(OSR_METHODS.names())
    train = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "milestones": [60],
             "gamma": 0.1, "width": 1.0}  # fmt: skip
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 6, (4,))
    flops = {}
    for name in cluster.OSR_METHOD_COST:
        method = build_method(name, 6, train).setup()
        method.train_mode()
        flops[name] = sum(_flops(lambda p=p, m=method: m.step(p, x, y)) for p in method.passes)
    for name, cost in cluster.OSR_METHOD_COST.items():
        assert flops[name] / flops["softmax"] == pytest.approx(cost, rel=0.02), name


def test_osr_runtimes_are_the_documented_closed_form():
    config = paper("osr_f1")
    rate = 2005.7 * 327.6 / 164.6
    # SVHN F1 trial 0: 6 known classes of 73,257 / 10 training images each; DIAS 8.4, 200 epochs
    n = cluster.osr_images(config, "svhn", "F1", 0)
    assert n == {
        "train": math.ceil(6 * 7325.7),
        "test": math.ceil(6 * 2603.2),
        "unknown": math.ceil(4 * 2603.2),
    }
    dias = cluster.osr_resources(config, "svhn", "F1", 0, "dias")
    assert dias["runtime"] == math.ceil(2 * 200 * 43955 * 8.4 / rate / 60) + 10 == 627
    assert dias["cpus_per_task"] == cluster.TRAIN_CPUS
    # uint8 + float32 train: 5 bytes x 70,0xx images x 3,072 values = 1.08 GB -> 2,000 MB over the base
    assert dias["mem_mb"] == cluster.BASE_MEM_MB + 1000 * math.ceil(5 * sum(n.values()) * 3072 / 1e9) == 6000
    assert (
        cluster.osr_resources(config, "svhn", "F1", 0, "softmax")["runtime"]
        == math.ceil(2 * 200 * 43955 / rate / 60) + 10
    )
    # ARPL trains on its own recipe (osr.recipes: 100 epochs), and is priced so
    assert config["osr"]["recipes"] == {"arpl": "arpl"}
    assert cluster.osr_resources(config, "svhn", "F1", 0, "arpl")["runtime"] == (
        math.ceil(2 * 100 * 43955 / rate / 60) + 10
    )
    # CIFAR+50: 4 known CIFAR-10 classes; the unknowns are 50 CIFAR-100 classes x 100 test images
    assert cluster.osr_images(config, "cifar_plus50", "F1", 0) == {
        "train": 20000,
        "test": 4000,
        "unknown": 5000,
    }
    # Tiny-ImageNet: 20 known classes x 500 images, the other 180 classes' 50 val images unknown
    assert cluster.osr_images(config, "tinyimagenet", "F1", 0) == {
        "train": 10000,
        "test": 1000,
        "unknown": 9000,
    }
    # osr_eval: one forward pass (a third of a training step) over every image; retries get more time
    ev = cluster.osr_resources(config, "svhn", "F1", 0, "dias", job="eval", attempt=2)
    assert ev["runtime"] == 2 * (math.ceil(2 * sum(n.values()) / 3 / rate / 60) + 10)
    assert ev["cpus_per_task"] == cluster.EVAL_CPUS


def test_osr_embedded_sizes_come_from_the_config():
    config = validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    emb = config["osr"]["embedded"]
    n = cluster.osr_images(config, "mnist5k", "F1", 0)
    assert n["train"] == 6 * emb["train_per_class"] and n["unknown"] == 4 * emb["test_per_class"]


def test_multilabel_runtimes_and_memory_are_the_documented_closed_form():
    config = paper("edge_voc2012")
    rate, side_values = 1407.4 * 1159.4 / 5340.4, 256 * 256 * 3
    n_train, n_val = 5717 - 500, 500
    bce = cluster.ml_resources(config, "bce")
    assert bce["runtime"] == math.ceil(2 * 100 * (n_train + n_val / 3) / rate / 60) + 10 == 69
    # streamed: 13 bytes a value of 4 steps of 128 images (above the validation batch of 512), plus
    # the train + val targets as uint8 and float32 (20 labels); independent of the sets' sizes
    assert (
        bce["mem_mb"]
        == cluster.BASE_MEM_MB
        + 1000 * math.ceil((13 * 4 * 128 * side_values + 5 * (n_train + n_val) * 20) / 1e9)
        == 6000
    )
    # EDGE: an OE batch of 128 beside each ID batch of 128 (cost 2); the 300K-image pool is read per
    # batch, so it adds one OE batch a step, not the pool (it used to ask for 899 GB)
    edge = cluster.ml_resources(config, "edge", attempt=2)
    assert edge["runtime"] == 2 * (math.ceil(2 * 100 * (n_train * 2 + n_val / 3) / rate / 60) + 10)
    assert (
        edge["mem_mb"]
        == cluster.BASE_MEM_MB
        + 1000 * math.ceil((13 * 4 * 256 * side_values + 5 * (n_train + n_val) * 20) / 1e9)
        == 7000
    )
    # the same run on a pool 100 times larger asks for the same memory
    big = copy.deepcopy(config)
    big["multilabel"]["benchmark"]["oe_size"] = 30_000_000
    assert cluster.ml_resources(big, "edge")["mem_mb"] == edge["mem_mb"]
    # extraction: one forward pass over each set; memory: two batches of 256 converting, and the
    # largest set's float32 logits + ResNet-50 features (2048 + 20), twice (list and concatenation)
    sets = ("train", "test", "ood/svhn", "ood/lsun", "ood/textures")
    ext = cluster.ml_resources(config, "bce", "extract", sets)
    total = n_train + 5823 + 26032 + 10000 + 5640
    assert ext["runtime"] == math.ceil(2 * total / 3 / rate / 60) + 10
    assert ext["mem_mb"] == cluster.BASE_MEM_MB + 1000 * math.ceil(
        (2 * 13 * 256 * side_values + 8 * 26032 * (2048 + 20)) / 1e9
    )
    assert ext["cpus_per_task"] == cluster.EVAL_CPUS


def test_multilabel_embedded_sizes_come_from_the_config():
    config = validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    b = config["multilabel"]["benchmark"]
    assert cluster.ml_set_images(config, "train") == b["train_size"]
    assert cluster.ml_set_images(config, "ood/textures") == b["ood_size"]
    assert cluster.ml_set_images(config, "oe/aux") == b["oe_size"]
    res = cluster.ml_resources(config, "bce")
    run = config["multilabel"]["runs"]["bce"]
    rate = 15188.1 * (28 / 32) ** 2
    assert (
        res["runtime"]
        == math.ceil(2 * run["epochs"] * (b["train_size"] + b["val_size"] / 3) / rate / 60) + 10
    )


@pytest.mark.parametrize(
    ("config", "rule", "wildcards", "runtime"),
    [
        ("osr_f1", "osr_train", "family=F1, osr_ds=svhn, trial=0, osr_method=dias", "627"),
        ("edge_voc2012", "ml_train", "mlrun=bce", "69"),
    ],
)
def test_osr_and_multilabel_dry_runs_show_the_estimates(tmp_path, config, rule, wildcards, runtime):
    resources = _dry_run_resources(tmp_path, config, rule, wildcards)
    assert resources["gpu"] == "1" and resources["runtime"] == runtime
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

"""Cluster resources of the workflow's jobs (SLURM ``runtime``, ``mem_mb``, ``cpus_per_task``).

Used by the rules' ``resources:`` (a scheduler such as SLURM reads them; a local run ignores them)
and so imported by the Snakefile: no torch here. A run may state its own values in its
``resources`` block (``runtime`` in minutes, ``mem_mb``, ``cpus_per_task``); what it leaves out
is estimated from the config:

* runtime of a training job, in minutes::

      runtime = ceil(SAFETY * epochs * n_train * cost / rate / 60) + OVERHEAD_MIN,   times attempt

  with ``n_train`` the ID training images, ``rate`` the model's training throughput measured on one
  H100 (``benchmarks/results/gpu_smoke_h100.json``, images/s; :data:`H100_TRAIN_IMAGES_PER_S`),
  ``cost`` = 2 for methods that also train on an outlier batch per step (outlier exposure, AOE,
  energy fine-tuning, EDGE) and 1 otherwise, times :data:`STEP_COST` (DIAS: 7), and SAFETY = 2
  for a slower GPU or a busy node. A retried job (``attempt`` 2, 3, ...; the profile's ``retries``)
  asks for ``attempt`` times as long; it resumes from its last checkpoint anyway. A search (rule
  hpo) trains ``n_trials`` times ``hpo.epochs`` epochs on the same images.
* host memory: the stored arrays a job loads, as float32 (4 bytes a value), plus a fixed 4 GB::

      mem_mb = 4000 + 4 * n_images * side^2 * channels / 1e6,   rounded up to 1000 MB

  with ``n_images`` the train and val splits plus the auxiliary pool when the run trains on it.

Example (WRN-40-2 on CIFAR-10, 100 epochs, 49,000 training images at 2,006 images/s):
2 * 100 * 49000 / 2006 / 60 = 81.4 -> 82 + 10 = 92 minutes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: Training images/s on one H100 (torch 2.11, benchmarks/results/gpu_smoke_h100.json). resnet18 is
#: not measured: twice resnet34 (half its multiply-adds at 32 px).
H100_TRAIN_IMAGES_PER_S = {
    "small_cnn": 15188.1,
    "wrn40_2": 2005.7,
    "resnet34": 1407.4,
    "resnet18": 2814.8,
    "mobilenet_v3_large": 1656.6,  # 64 px (Food-101 at rgb64)
}
#: Throughput assumed for a model not in the table (below every measured one: a generous runtime).
DEFAULT_IMAGES_PER_S = 500.0
#: Margin for a slower GPU than an H100, a shared node, evaluation and checkpointing.
SAFETY = 2.0
#: Minutes for start-up: loading the stored sets, building the model, the final evaluation.
OVERHEAD_MIN = 10
#: Minimum and default memory per job (MB): Python, torch and the CUDA context.
BASE_MEM_MB = 4000
#: CPUs of a job that trains on a GPU (the training threads plus headroom for loading and augmenting).
TRAIN_CPUS = 4

#: Training-split size of catalog benchmarks before the validation hold-out (train_per_class: null).
FULL_TRAIN_SIZE = {"cifar10": 50000, "cifar100": 50000, "food101": 75750}
#: The auxiliary pool when aux_size is null (every catalog benchmark uses the 300K random images).
FULL_AUX_SIZE = 300000
#: Values of one image per image_format (side * side * channels).
IMAGE_VALUES = {"gray28": 28 * 28, "rgb32": 32 * 32 * 3, "rgb64": 64 * 64 * 3}

RESOURCE_KEYS = ("runtime", "mem_mb", "cpus_per_task")


def train_images(config: Mapping[str, Any]) -> int:
    """ID training images per epoch: ``train_per_class`` times the classes, or the whole training
    split minus the validation hold-out (``train_per_class: null``)."""
    from oodflow.data import BENCHMARKS

    bench = config["benchmark"]
    classes = BENCHMARKS.get(bench["name"]).num_classes
    if bench["train_per_class"] is not None:
        return bench["train_per_class"] * classes
    full = FULL_TRAIN_SIZE.get(bench["name"], 100000)
    return full - bench["val_per_class"] * classes


def _uses_outliers(spec: Mapping[str, Any]) -> bool:
    from oodflow.methods import AUX_METHODS

    return spec["method"] in AUX_METHODS


def _aux_images(config: Mapping[str, Any], spec: Mapping[str, Any]) -> int:
    if not _uses_outliers(spec):
        return 0
    outliers = spec.get("outliers") or {}
    if outliers.get("source") == "gan":
        return outliers.get("count") or config["benchmark"]["gan"]["samples"]
    return config["benchmark"]["aux_size"] or FULL_AUX_SIZE


#: Cost of one training step of a method relative to a cross-entropy step on the same images (DIAS:
#: a D, a G and a copycat step and the fake passes besides the classifier's, ~7x measured on CPU).
STEP_COST = {"dias": 7}


def training_minutes(config: Mapping[str, Any], spec: Mapping[str, Any], epochs: int) -> int:
    """Estimated minutes of ``epochs`` epochs of run ``spec`` (module docstring), before retries."""
    rate = H100_TRAIN_IMAGES_PER_S.get(spec["model"], DEFAULT_IMAGES_PER_S)
    cost = (2 if _uses_outliers(spec) else 1) * STEP_COST.get(spec["method"], 1)
    seconds = SAFETY * epochs * train_images(config) * cost / rate
    return math.ceil(seconds / 60) + OVERHEAD_MIN


def memory_mb(config: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> int:
    """Host memory of a job that holds the train and val splits (and the run's outliers) as float32."""
    from oodflow.data import BENCHMARKS

    bench = config["benchmark"]
    n = train_images(config) + bench["val_per_class"] * BENCHMARKS.get(bench["name"]).num_classes
    if spec is not None:
        n += _aux_images(config, spec)
    values = IMAGE_VALUES.get(bench.get("image_format", "gray28"), IMAGE_VALUES["rgb64"])
    return BASE_MEM_MB + 1000 * math.ceil(4 * n * values / 1e9)


def run_resources(config: Mapping[str, Any], run: str, job: str = "train", attempt: int = 1) -> dict:
    """``runtime`` (minutes), ``mem_mb`` and ``cpus_per_task`` of run ``run``'s ``job`` ("train" or
    "hpo"): the run's ``resources`` block where it gives a value, the estimate otherwise; the
    runtime is multiplied by ``attempt`` (a retried job gets more time)."""
    spec = config["runs"][run]
    given = spec.get("resources") or {}
    if job == "hpo":
        hpo = spec["hpo"]
        minutes = hpo["n_trials"] * training_minutes(config, spec, hpo["epochs"] or spec["epochs"])
    else:
        minutes = training_minutes(config, spec, spec["epochs"])
    estimate = {"runtime": minutes, "mem_mb": memory_mb(config, spec), "cpus_per_task": TRAIN_CPUS}
    out = {key: given.get(key) or estimate[key] for key in RESOURCE_KEYS}
    out["runtime"] *= attempt
    return out


def gan_resources(config: Mapping[str, Any], attempt: int = 1) -> dict:
    """The in-workflow DCGAN (rule train_gan): small, so priced like the small CNN per epoch."""
    epochs = config["benchmark"]["gan"]["epochs"]
    spec = {"model": "small_cnn", "method": "ce"}
    return {
        "runtime": training_minutes(config, spec, epochs) * attempt,
        "mem_mb": memory_mb(config),
        "cpus_per_task": TRAIN_CPUS,
    }


def eval_resources(config: Mapping[str, Any], attempt: int = 1) -> dict:
    """Feature extraction, network scores and adversarial evaluation of one run: an hour on a
    catalog benchmark (a few minutes of GPU time, SAFETY-fold), 15 minutes on the embedded one."""
    from oodflow.data import BENCHMARKS

    embedded = BENCHMARKS.get(config["benchmark"]["name"]).source is None
    return {
        "runtime": (15 if embedded else 60) * attempt,
        "mem_mb": memory_mb(config),
        "cpus_per_task": 2,
    }

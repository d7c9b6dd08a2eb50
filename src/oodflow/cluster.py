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

Open-set recognition (rules osr_train, osr_eval; :func:`osr_resources`), per (dataset, split family,
trial, method):

* throughput: classifier32 is not measured on an H100. Its rate is WRN-40-2's scaled by their
  multiply-adds per 32 px image (torch.utils.flop_counter: 327.6 M / 164.6 M), 2,005.7 * 1.99 = 3,992
  images/s, and by ``(32 / img_size)^2`` at another size. Scaling from the *smaller* measured model
  is the generous choice: the measurements grow slower than 1 / multiply-adds (ResNet-34, 3.5 times
  WRN-40-2's multiply-adds, trains only 1.4 times slower), which would give classifier32 ~9,900/s.
* cost (:data:`OSR_METHOD_COST`): one epoch in units of a softmax epoch (one forward + backward of the
  classifier per batch = 3 forward passes ``C``), counted from :mod:`oodflow.osr.methods`, with the
  generator ``G`` = 0.42 C and discriminator ``D`` = 0.47 C (multiply-adds at width 1), a backward
  = 2 forwards, and ``net.from_block2`` / ``from_block3`` = 0.65 / 0.13 C:

  - softmax, ARPL: 3 C -> 1 (the reciprocal points are negligible);
  - ARPL+CS, two passes over the training set per epoch (ARPL's ``osr.py``): the ``confusing`` pass
    per batch: D step ``G + 6 D``; G step ``2 G + 3 D + 3 C`` (the D step's fakes, ``reuse_fakes``,
    through D and the classifier, backward into G); classifier step ``G + 6 C`` (real and fake batch)
    -> 9 C + 4 G + 9 D = 14.9 C; then the plain ARPL pass 3 C; together 17.9 C -> 6.0 (``reuse_fakes:
    false`` draws the G step's fakes anew: one G more, 6.1);
  - DIAS, two passes over the training set per epoch: the ``gan`` pass as ARPL+CS's first (14.9 C), the
    ``copycat`` pass: copycat step 3 C + the classifier's features 1 C, classifier step the copycat's
    features 1 C + ``3 (0.65 + 0.13) C`` for the hard fakes + 3 C -> 10.3 C; together 25.2 C -> 8.4.

  (A FLOP count of one step of each method agrees within 1 %: tests/test_cluster_profiles.py.)
* runtime = ``ceil(SAFETY * epochs * n_train * cost / rate / 60) + OVERHEAD_MIN`` (osr_train) and
  ``ceil(SAFETY * n_all / (EVAL_SPEEDUP * rate) / 60) + OVERHEAD_MIN`` (osr_eval: one forward pass
  over the known train and test and the unknown images), with ``n_train = num_known * train images
  per class`` of the split (:data:`OSR_SPLIT_SIZES` / classes; mnist5k: ``osr.embedded``).
* mem_mb = 4000 + 5 bytes per value of every stored image (uint8, plus the float32 copy of the
  training images), rounded up to 1000 MB; cpus_per_task = 4 (train) / 2 (eval).

Multi-label (rules ml_train, ml_extract, ml_oe_features; :func:`ml_resources`):

* throughput of the run's model at the benchmark's ``image_size`` (:func:`images_per_s`): ResNet-50
  is not measured either; ResNet-34's rate times their multiply-adds (1,159.4 M at 32 px, CIFAR stem,
  / 5,340.4 M at 256 px, ImageNet stem) = 305.5 images/s at 256 px (generous again: the large
  images use the GPU better than the 32 px measurement); the embedded small CNN scales its 28 px
  rate to 32 px.
* ml_train: ``ceil(SAFETY * epochs * (n_train * cost + n_val / EVAL_SPEEDUP) / rate / 60) +
  OVERHEAD_MIN``, ``cost = 1 + oe_batch_size / batch_size`` for objectives with an OE batch per step
  (1 for bce), the validation pass every epoch a forward pass.
* ml_extract / ml_oe_features: one forward pass over every set they cache, as osr_eval.
* mem_mb: the stored sets are read and converted per batch (:mod:`oodflow.multilabel.stream`), so
  memory depends on the batches, not on the sets' sizes (the sets' file pages are page cache, which
  the kernel reclaims)::

      mem_mb = 4000 + CONVERT_BYTES * V * max(HELD_STEPS * (batch_size + oe_batch_size), EVAL_BATCH)
               + 5 * (n_train + n_val) * C,                           rounded up to 1000 MB (ml_train)
      mem_mb = 4000 + 2 * CONVERT_BYTES * V * EXTRACT_BATCH
               + 8 * n_largest * (feature_dim + C),                   rounded up to 1000 MB (extraction)

  with ``V`` = side^2 * channels values an image, ``CONVERT_BYTES`` = 13 bytes a value while
  ``model_input`` converts a batch (uint8 in, float32 out and its temporaries; tracemalloc),
  ``HELD_STEPS`` = 4 steps' images alive at once (the loader's next step, the converted batch, its
  augmented copy and the concatenated ID + OE batch), the validation batch of ``EVAL_BATCH`` = 512,
  the targets as uint8 and float32 (5 bytes), and per extracted set its float32 logits and features
  (``feature_dim``: :data:`ML_FEATURE_DIM`), twice (the per-batch list and its concatenation).
  Set sizes: the config's ``*_size``, or for ``null`` the catalog split (:data:`ML_SPLIT_SIZES`,
  :data:`ML_SET_SIZES`).
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
#: Multiply-adds per image (millions; torch.utils.flop_counter, forward) behind the derived rates.
MACS_M = {"wrn40_2": 327.6, "classifier32": 164.6, "resnet34": 1159.4, "resnet50_256px": 5340.4}
#: Not measured: scaled from the measured model of the same kind by multiply-adds (module docstring).
H100_TRAIN_IMAGES_PER_S["classifier32"] = round(
    H100_TRAIN_IMAGES_PER_S["wrn40_2"] * MACS_M["wrn40_2"] / MACS_M["classifier32"], 1
)
H100_TRAIN_IMAGES_PER_S["resnet50"] = round(
    H100_TRAIN_IMAGES_PER_S["resnet34"] * MACS_M["resnet34"] / MACS_M["resnet50_256px"], 1
)
#: Image side (px) at which a rate of H100_TRAIN_IMAGES_PER_S holds; 32 where not listed.
RATE_SIDE = {"small_cnn": 28, "mobilenet_v3_large": 64, "resnet50": 256}
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
#: CPUs of a job that only runs the network forward (extraction, evaluation).
EVAL_CPUS = 2
#: A forward pass costs a third of a training step (backward = 2 forwards); the measured extraction
#: rates are 8-21 times the training rates, so this is generous.
EVAL_SPEEDUP = 3

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
    return gpu_minutes(epochs * train_images(config) * cost, rate)


def gpu_minutes(images: float, rate: float) -> int:
    """``ceil(SAFETY * images / rate / 60) + OVERHEAD_MIN``: a job that pushes ``images`` training
    images (or their equivalent) through a model at ``rate`` images/s."""
    return math.ceil(SAFETY * images / rate / 60) + OVERHEAD_MIN


def images_per_s(model: str, side: int) -> float:
    """Training images/s of ``model`` at ``side`` px: the table's rate times ``(RATE_SIDE / side)^2``
    (cost grows with the pixels); :data:`DEFAULT_IMAGES_PER_S` for a model not in the table."""
    if model not in H100_TRAIN_IMAGES_PER_S:
        return DEFAULT_IMAGES_PER_S
    return H100_TRAIN_IMAGES_PER_S[model] * (RATE_SIDE.get(model, 32) / side) ** 2


def _mem_mb(nbytes: float) -> int:
    return BASE_MEM_MB + 1000 * math.ceil(nbytes / 1e9)


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


# ----------------------------------------------------------------------------- open-set recognition
#: One training epoch of an OSR method in softmax epochs (module docstring: passes per batch).
OSR_METHOD_COST = {"softmax": 1.0, "arpl": 1.0, "arpl_cs": 6.0, "dias": 8.4}
#: (classes, train images, test images) of the OSR sources' prepared splits (Tiny-ImageNet: val).
OSR_SPLIT_SIZES = {
    "mnist": (10, 60000, 10000),
    "svhn": (10, 73257, 26032),
    "cifar10": (10, 50000, 10000),
    "cifar100": (100, 50000, 10000),
    "tinyimagenet": (200, 100000, 10000),
}


def osr_images(config: Mapping[str, Any], dataset: str, family: str, trial: int) -> dict[str, int]:
    """Images of one OSR benchmark: ``train`` (known classes), ``test`` (known) and ``unknown``, from
    the per-class sizes of its sources (the class average: SVHN's classes differ in size)."""
    from oodflow.osr.splits import DATASETS, task

    ds, t = DATASETS[dataset], task(dataset, family, int(trial))
    if ds.known_source is None:  # the embedded mnist5k: sizes from the config
        emb = config["osr"]["embedded"]
        train_pc, test_pc, unknown_pc = emb["train_per_class"], emb["test_per_class"], emb["test_per_class"]
    else:
        classes, train, test = OSR_SPLIT_SIZES[ds.known_source]
        train_pc, test_pc = train / classes, test / classes
        un_classes, _, un_test = OSR_SPLIT_SIZES[ds.unknown_source]
        unknown_pc = un_test / un_classes
    return {
        "train": math.ceil(t.num_known * train_pc),
        "test": math.ceil(t.num_known * test_pc),
        "unknown": math.ceil(len(t.unknown) * unknown_pc),
    }


def osr_resources(
    config: Mapping[str, Any], dataset: str, family: str, trial: int, method: str,
    job: str = "train", attempt: int = 1,
) -> dict:  # fmt: skip
    """``runtime``, ``mem_mb``, ``cpus_per_task`` of rule osr_train (``job="train"``) or osr_eval
    (``"eval"``) for one (dataset, family, trial, method); runtime times ``attempt``. The epochs are
    the method's own (``osr.recipes``: ARPL's 100-epoch recipe is priced at 100 epochs)."""
    from oodflow.osr.workflow import run_config

    train = run_config(config, dataset, family, trial, method)["train"]
    n = osr_images(config, dataset, family, trial)
    rate = images_per_s("classifier32", train["img_size"])
    if job == "train":
        cost = OSR_METHOD_COST.get(method, max(OSR_METHOD_COST.values()))
        minutes, cpus = gpu_minutes(train["epochs"] * n["train"] * cost, rate), TRAIN_CPUS
    else:
        minutes, cpus = gpu_minutes(sum(n.values()) / EVAL_SPEEDUP, rate), EVAL_CPUS
    values = sum(n.values()) * train["img_size"] ** 2 * 3
    return {"runtime": minutes * attempt, "mem_mb": _mem_mb(5 * values), "cpus_per_task": cpus}


# ------------------------------------------------------------------------------------- multi-label
#: (train, test) images of the catalog multi-label benchmarks (train before the val hold-out; test:
#: the split EDGE evaluates on; NUS-WIDE: half its official test list, before dropping unlabelled).
ML_SPLIT_SIZES = {"voc2012": (5717, 5823), "coco2014": (82783, 40504), "nuswide": (161789, 53930)}
#: Images of the catalog OOD sets and OE pools (``ood_size`` / ``oe_size``: null).
ML_SET_SIZES = {
    "textures": 5640,
    "mnist": 10000,
    "lsun": 10000,
    "svhn": 26032,
    "places50": 10000,
    "inaturalist": 10000,
    "sun50": 10000,
    "tinyimages_300k": 300000,
}
#: A set not in the tables above (larger than any test set listed).
ML_DEFAULT_SET_SIZE = 30000
#: Bytes a value while ``multilabel.stream.model_input`` converts a uint8 batch (tracemalloc peak).
ML_CONVERT_BYTES = 13
#: Training steps whose images are alive at once (module docstring).
ML_HELD_STEPS = 4
#: Batch sizes of validation (``multilabel.training.predict``) and extraction (``extract``).
ML_EVAL_BATCH, ML_EXTRACT_BATCH = 512, 256
#: Penultimate feature width of the multi-label models (a model not listed: the widest).
ML_FEATURE_DIM = {"resnet50": 2048, "resnet34": 512, "resnet18": 512, "small_cnn": 128}


def ml_set_images(config: Mapping[str, Any], name: str) -> int:
    """Images of a stored multi-label set: ``train``, ``val``, ``test``, ``ood/<set>``, ``oe/<pool>``."""
    b = config["multilabel"]["benchmark"]
    full_train, full_test = ML_SPLIT_SIZES.get(b["name"], (ML_DEFAULT_SET_SIZE, ML_DEFAULT_SET_SIZE))
    if name == "train":
        return b["train_size"] or full_train - b["val_size"]
    if name == "val":
        return b["val_size"]
    if name == "test":
        return b["test_size"] or full_test
    kind, _, set_name = name.partition("/")
    size = b["ood_size"] if kind == "ood" else b["oe_size"]
    return size or ML_SET_SIZES.get(set_name, ML_DEFAULT_SET_SIZE)


def ml_resources(
    config: Mapping[str, Any], run: str, job: str = "train", sets: tuple[str, ...] = (), attempt: int = 1
) -> dict:
    """``runtime``, ``mem_mb``, ``cpus_per_task`` of multi-label run ``run``'s ``job``: "train"
    (rule ml_train) or "extract" (ml_extract, ml_oe_features: one forward pass over ``sets``, names as
    :func:`ml_set_images`); runtime times ``attempt``."""
    from oodflow.multilabel import ML_OE_OBJECTIVES
    from oodflow.multilabel.steps import ml_benchmark

    ml = config["multilabel"]
    spec, bench = ml["runs"][run], ml_benchmark(config)
    rate = images_per_s(spec["model"], bench.image_size)
    if job == "train":
        sizes = [ml_set_images(config, "train"), ml_set_images(config, "val")]
        cost = 1.0
        if spec["objective"] in ML_OE_OBJECTIVES:
            cost += (spec["oe_batch_size"] or spec["batch_size"]) / spec["batch_size"]
            sizes.append(ml_set_images(config, f"oe/{ml['benchmark']['oe_set']}"))
        minutes = gpu_minutes(spec["epochs"] * (sizes[0] * cost + sizes[1] / EVAL_SPEEDUP), rate)
        cpus = TRAIN_CPUS
    else:
        sizes = sorted((ml_set_images(config, s) for s in sets), reverse=True)
        minutes = gpu_minutes(sum(sizes) / EVAL_SPEEDUP, rate)
        cpus = EVAL_CPUS
    per_image = bench.image_size**2 * bench.channels
    if job == "train":
        step = spec["batch_size"] + (spec["oe_batch_size"] or spec["batch_size"] if len(sizes) > 2 else 0)
        batches = ML_CONVERT_BYTES * per_image * max(ML_HELD_STEPS * step, ML_EVAL_BATCH)
        nbytes = batches + 5 * (sizes[0] + sizes[1]) * bench.num_labels
    else:
        features = ML_FEATURE_DIM.get(spec["model"], max(ML_FEATURE_DIM.values())) + bench.num_labels
        nbytes = 2 * ML_CONVERT_BYTES * per_image * ML_EXTRACT_BATCH + 8 * max(sizes, default=0) * features
    return {"runtime": minutes * attempt, "mem_mb": _mem_mb(nbytes), "cpus_per_task": cpus}

"""Benchmark definitions: the ID dataset, its classes, normalisation and OOD test sets.

Two kinds share one code path. The embedded ``mnist5k`` is built from images that installed
packages ship (:mod:`oodflow.data.embedded`). Catalog benchmarks (``cifar10``, ``cifar100``,
``food101``) take
their ID data and OOD sets from prepared catalog datasets (:mod:`oodflow.data.catalog`); the workflow
derives the stored sets from them with seeded, recorded subsets (:mod:`oodflow.data.derive`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Source:
    """A split of a prepared catalog dataset, e.g. ``Source("svhn", "test")``.

    ``group`` places an OOD set in the near-/far-OOD averages of OpenOOD-style tables.
    """

    dataset: str
    split: str
    group: str = "far"


@dataclass(frozen=True)
class Benchmark:
    """An ID dataset with the facts models, data rules and scores need.

    Attributes:
        name: registry name, also the results folder (``results/<name>``).
        num_classes: number of ID classes.
        mean, std: per-channel normalisation of intensities in [0, 1] (one value for grey data).
        ood_sets: names of the OOD test sets this benchmark offers (config picks among them).
        image_formats: the ``image_format`` values it can be served as (the first is the native).
        source: catalog dataset of the ID data (``None`` for the embedded benchmark); its prepared
            ``train`` split yields train and val (a seeded, stratified hold-out), ``test`` the test.
        ood_sources: the catalog split behind each OOD set (catalog benchmarks only).
        aux_source: the auxiliary outlier pool (outlier exposure), if any.
        image_size: side of the stored (square) images; every catalog set whose images have
            another size (list-form sets, 28-px grey sets, ...) is centre-cropped to a square and
            resized to it bilinearly when it is derived.
        per_class: images per class of the source's train and test splits, when balanced and known.
        augment: training augmentation when a run sets ``augment: true``: ``shift`` (random shifts
            of up to 2 px, for digits) or ``crop_flip`` (random crops of the image padded by 1/8 of
            its side, i.e. 4 px at 32 px, plus horizontal flips: the standard CIFAR recipe).
    """

    name: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    ood_sets: tuple[str, ...]
    image_formats: tuple[str, ...]
    source: str | None = None
    ood_sources: dict[str, Source] = field(default_factory=dict)
    aux_source: Source | None = None
    image_size: int = 28
    augment: str = "shift"
    #: Images per class of the source's ``train`` and ``test`` splits (balanced datasets), so the
    #: config check can refuse larger per-class counts before any job; empty: not known.
    per_class: dict[str, int] = field(default_factory=dict)

    def datasets(self, ood_sets: list[str] | tuple[str, ...], aux: bool = False) -> list[str]:
        """The catalog datasets a config of this benchmark needs (none for the embedded one)."""
        if self.source is None:
            return []
        names = [self.source] + [self.ood_sources[o].dataset for o in ood_sets]
        if aux and self.aux_source is not None:
            names.append(self.aux_source.dataset)
        return list(dict.fromkeys(names))


MNIST5K = Benchmark(
    name="mnist5k",
    num_classes=10,
    mean=(0.1307,),
    std=(0.3081,),
    ood_sets=("textures", "photos", "faces", "glyphs", "gaussian", "uniform"),
    image_formats=("gray28", "rgb32"),
)

# OpenOOD v1.5 CIFAR benchmarks (Zhang et al. 2023; docs/references.md): near-OOD = the other CIFAR and
# TinyImageNet, far-OOD = MNIST, SVHN, Textures, Places365; plus the ODIN-era sets of the energy, OE
# and PALM/ADAPT papers. OpenOOD removes the TinyImageNet images whose classes overlap CIFAR's; we
# use the whole TinyImageNet val split (recorded difference).
_COMMON_OOD = {
    "tin": Source("tinyimagenet", "val", "near"),
    "mnist": Source("mnist", "test"),
    "svhn": Source("svhn", "test"),
    "textures": Source("dtd", "all"),
    "places365": Source("places365_val", "ood10k"),
    "lsun_crop": Source("lsun_crop", "test"),
    "lsun_resize": Source("lsun_resize", "test"),
    "isun": Source("isun", "test"),
    "tin_crop": Source("tinyimagenet_crop", "test"),
    "tin_resize": Source("tinyimagenet_resize", "test"),
}


def _cifar(name: str, num_classes: int, other: str, mean, std) -> Benchmark:
    # 50,000 training and 10,000 test images, balanced (Krizhevsky 2009)
    ood = {other: Source(other, "test", "near"), **_COMMON_OOD}
    return Benchmark(
        name=name,
        num_classes=num_classes,
        mean=mean,
        std=std,
        ood_sets=tuple(ood),
        image_formats=("rgb32",),
        source=name,
        ood_sources=ood,
        aux_source=Source("tinyimages_300k", "train"),
        image_size=32,
        augment="crop_flip",
        per_class={"train": 50000 // num_classes, "test": 10000 // num_classes},
    )


CIFAR10 = _cifar("cifar10", 10, "cifar100", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100 = _cifar("cifar100", 100, "cifar10", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))

# The Food-101 OOD project (Tranzocchi & Corsi; docs/food101.md): ID Food-101, eight OOD sets. The paper names
# five (near: Flowers102, DTD, OxfordIIITPet; far: SVHN, FashionMNIST); the other three are
# UNVERIFIED and ours: Places365 (scene photographs, the standard scene OOD set; near, as a set of
# full-resolution natural photographs), MNIST (grey digits, the far-OOD partner of FashionMNIST)
# and CIFAR-10 (tiny natural object photographs without any food class). Which split of each set
# the paper used is UNVERIFIED: we take the test split everywhere (DTD: test of partition 1;
# Places365: the seeded 10k subset of val, as the CIFAR benchmarks). Every image is stored at
# FOOD101_SIZE px: Food-101 and the other photographs are centre-cropped to a square and
# downscaled, the 28/32-px sets upscaled (grey ones repeated to RGB), all bilinearly. 64 px keeps
# the 75,750 training images in memory (0.9 GB uint8) and an epoch of MobileNetV3 cheap; the
# paper's input size is UNVERIFIED (docs/food101.md).
FOOD101_SIZE = 64
_FOOD101_OOD = {
    "flowers102": Source("flowers102", "test", "near"),
    "dtd": Source("dtd", "test", "near"),
    "oxford_pets": Source("oxford_pets", "test", "near"),
    "places365": Source("places365_val", "ood10k", "near"),
    "svhn": Source("svhn", "test"),
    "fashion_mnist": Source("fashion_mnist", "test"),
    "mnist": Source("mnist", "test"),
    "cifar10": Source("cifar10", "test"),
}

FOOD101 = Benchmark(
    name="food101",
    num_classes=101,
    mean=(0.485, 0.456, 0.406),  # ImageNet statistics, as for torchvision's MobileNetV3
    std=(0.229, 0.224, 0.225),
    ood_sets=tuple(_FOOD101_OOD),
    image_formats=(f"rgb{FOOD101_SIZE}",),
    source="food101",
    ood_sources=_FOOD101_OOD,
    # Outliers for energy fine-tuning: the 300K random images of Hendrycks et al., as energy_ood
    # uses (docs/references.md; the paper's own auxiliary set is UNVERIFIED). Disjoint from every OOD
    # test set above; not filtered for food (only CIFAR classes were removed upstream).
    aux_source=Source("tinyimages_300k", "train"),
    image_size=FOOD101_SIZE,
    augment="crop_flip",
    per_class={"train": 750, "test": 250},  # Bossard et al. 2014: 750 training, 250 test images a class
)


def sample_shape(benchmark: Benchmark) -> tuple[int, int, int]:
    """The channels-first ``(C, H, W)`` of the benchmark's stored images: the embedded sets are grey
    at their side, catalog sets have one channel per normalisation value at ``image_size``."""
    return (len(benchmark.mean), benchmark.image_size, benchmark.image_size)


def model_input(x: np.ndarray, benchmark: Benchmark, image_format: str) -> np.ndarray:
    """Stored uint8 images -> float32 network input ``(N, C, H, W)``, normalised per channel."""
    if image_format not in benchmark.image_formats:
        raise ValueError(
            f"benchmark '{benchmark.name}' is served as "
            f"{', '.join(benchmark.image_formats)}, not {image_format!r}"
        )
    if benchmark.source is None:
        from oodflow.data.embedded import to_model_input

        return to_model_input(x, image_format, benchmark.mean[0], benchmark.std[0])
    # catalog sets are stored RGB at the benchmark's size (grey OOD sets are converted when derived)
    side, channels = benchmark.image_size, len(benchmark.mean)
    if x.ndim != 4 or x.shape[1:] != (side, side, channels):
        raise ValueError(f"expected (N, {side}, {side}, {channels}) images, got {x.shape}")
    v = x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    mean = np.asarray(benchmark.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(benchmark.std, dtype=np.float32)[None, :, None, None]
    return np.ascontiguousarray((v - mean) / std, dtype=np.float32)


def load_inputs(path, benchmark: Benchmark, image_format: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a stored set and return model-ready ``(x float32 (N, C, H, W), y int64)``."""
    from oodflow.data.stored import load_set

    x, y = load_set(path, num_classes=benchmark.num_classes)
    return model_input(x, benchmark, image_format), y

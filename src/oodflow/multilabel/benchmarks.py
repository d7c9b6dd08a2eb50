"""Multi-label benchmarks: the ID data, its labels, normalisation, OOD test sets and OE pools.

``mnist5k-ml`` is embedded (built from installed packages by :mod:`oodflow.multilabel.embedded`);
``voc2012``, ``coco2014`` and ``nuswide`` are derived from prepared catalog datasets
(:mod:`oodflow.data.catalog`, list form with space-separated label indices) at ``image_size`` px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oodflow.data.benchmarks import Source


@dataclass(frozen=True)
class MLBenchmark:
    """A multi-label ID dataset with the facts the multi-label rules need.

    Attributes:
        name: registry name, also the results folder (``results/<name>``).
        num_labels: number of ID labels C (targets are multi-hot ``(N, C)``).
        mean, std: per-channel normalisation of intensities in [0, 1].
        image_size: side of the stored square images.
        ood_sets: names of the OOD test sets it offers.
        oe_sets: names of the outlier-exposure pools it offers (training and OE selection).
        oe_default: the OE pool runs train on unless ``benchmark.oe_set`` says otherwise.
        source: catalog dataset of the ID data (``None``: embedded); ``train_split`` yields train and
            a seeded hold-out val, ``test_split`` the ID test set (EDGE evaluates VOC and COCO on val).
        ood_sources, oe_sources: the catalog split behind each OOD set / OE pool.
        augment: training augmentation when a run sets ``augment: true`` (``oodflow.training.augment``;
            also the evaluation transform of ``eval_transform: random_train``). The paper benchmarks
            use EDGE's ``resized_crop_flip`` (RandomResizedCrop with area scale 0.5-2.0 back to the
            stored side, 256 px as in EDGE, plus horizontal flips; ``train.py`` of
            Yuchen-Sunflower/EDGE@6cce68fa); the embedded ``mnist5k-ml`` (ours, not EDGE's) keeps
            ``shift`` (digit canvases: shifts of up to 2 px, no flips).
    """

    name: str
    num_labels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    ood_sets: tuple[str, ...]
    oe_sets: tuple[str, ...]
    oe_default: str
    source: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    ood_sources: dict[str, Source] = field(default_factory=dict)
    oe_sources: dict[str, Source] = field(default_factory=dict)
    augment: str = "shift"

    @property
    def channels(self) -> int:
        return len(self.mean)

    def datasets(self, ood_sets, oe_sets) -> list[str]:
        """The catalog datasets a config of this benchmark needs (none for the embedded one)."""
        if self.source is None:
            return []
        names = [self.source] + [self.ood_sources[o].dataset for o in ood_sets]
        names += [self.oe_sources[o].dataset for o in oe_sets]
        return list(dict.fromkeys(names))


_EMBEDDED_OOD = ("textures", "photos", "faces", "glyphs", "gaussian", "uniform")

MNIST5K_ML = MLBenchmark(
    name="mnist5k-ml",
    num_labels=10,
    mean=(0.1002,),  # of the default train canvases (3000, zipf 1.0; docs/multilabel.md)
    std=(0.2486,),
    image_size=32,
    ood_sets=_EMBEDDED_OOD,
    # the spine's aux sources (disjoint from every OOD set) and, as further OE-selection candidates,
    # the OOD sets' sources (a candidate that is also a test set is for the ranking table only)
    oe_sets=("aux",),
    oe_default="aux",
)

# EDGE's OOD sets (docs/multilabel.md) that the catalog has; ImageNet-22K (JointEnergy subset) and
# nus_ood are not in the catalog (they come from deeplearning-wisc/multi-label-ood).
_PAPER_OOD = {
    "textures": Source("dtd", "all"),
    "mnist": Source("mnist", "test"),
    "lsun": Source("lsun_crop", "test"),
    "svhn": Source("svhn", "test"),
    "places50": Source("places_ood", "test"),
    "inaturalist": Source("inaturalist_ood", "test"),
    "sun50": Source("sun_ood", "test"),
}
# EDGE's OE set (ImageNet-22K for VOC/COCO, nus_ood for NUS-WIDE) is missing from the catalog; the
# 300K random images of Hendrycks et al. stand in (a documented substitute, docs/multilabel.md).
_PAPER_OE = {"tinyimages_300k": Source("tinyimages_300k", "train")}
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _paper(name: str, num_labels: int, test_split: str) -> MLBenchmark:
    return MLBenchmark(
        name=name,
        num_labels=num_labels,
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        image_size=256,
        ood_sets=tuple(_PAPER_OOD),
        oe_sets=tuple(_PAPER_OE),
        oe_default="tinyimages_300k",
        source=name,
        test_split=test_split,
        ood_sources=_PAPER_OOD,
        oe_sources=_PAPER_OE,
        augment="resized_crop_flip",  # EDGE's RandomResizedCrop(side, scale=(0.5, 2.0)) + flip
    )


VOC2012 = _paper("voc2012", 20, "val")
COCO2014 = _paper("coco2014", 80, "val")
NUSWIDE = _paper("nuswide", 81, "test")

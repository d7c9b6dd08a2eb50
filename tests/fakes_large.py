"""Tiny fake files in the exact upstream layouts of the list-form datasets (a few KB in all).

Every ``write_*`` function writes into ``raw_dir`` what the upstream download leaves there once its
archives are unpacked (top-level folder kept) and returns what the parser should produce:
``{"splits": {split: [(path, label), ...]}, "classes": [...]}``, rows sorted by path, ``label`` as
written in the TSV (``"3"``, ``"-1"``, ``"0 5"``, ``""``). The expectations are written out here by
hand (or computed from the documented rule), independently of the parsers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.io import savemat

from oodflow.smoke.fakes import formats

Rows = list[tuple[str, str]]


def jpeg(path: Path) -> None:
    """An 8x8 JPEG at ``path`` (folders created): a seeded pattern that differs from file to file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = formats.rng_for(0, path.parent.name, path.name)
    path.write_bytes(formats.encode_image(formats.image(rng, formats.tints(rng, 1)[0], 8, 8)))


def _text(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _expected(splits: dict[str, Rows], classes: list[str]) -> dict:
    return {"splits": {k: sorted(v) for k, v in splits.items()}, "classes": classes}


def write_food101(raw_dir: Path) -> dict:
    """``food-101/images/<class>/<id>.jpg`` and ``food-101/meta/{classes,train,test}.txt``."""
    base = raw_dir / "food-101"
    classes = ["apple_pie", "baby_back_ribs", "waffles"]
    train = ["waffles/30012", "apple_pie/1005649", "baby_back_ribs/7", "apple_pie/134"]
    test = ["waffles/9", "apple_pie/2"]
    for entry in train + test:
        jpeg(base / "images" / f"{entry}.jpg")
    _text(base / "meta" / "classes.txt", classes)
    _text(base / "meta" / "labels.txt", ["Apple pie", "Baby back ribs", "Waffles"])
    _text(base / "meta" / "train.txt", train)
    _text(base / "meta" / "test.txt", test)
    p = "food-101/images/"
    return _expected(
        {
            "train": [
                (p + "waffles/30012.jpg", "2"),
                (p + "apple_pie/1005649.jpg", "0"),
                (p + "baby_back_ribs/7.jpg", "1"),
                (p + "apple_pie/134.jpg", "0"),
            ],
            "test": [(p + "waffles/9.jpg", "2"), (p + "apple_pie/2.jpg", "0")],
        },
        classes,
    )


def write_flowers102(raw_dir: Path) -> dict:
    """``jpg/image_%05d.jpg``, ``imagelabels.mat`` (1-based labels), ``setid.mat`` (1-based ids)."""
    labels = [1, 102, 5, 1, 77, 102, 3, 50]  # of images 1..8
    for i in range(1, len(labels) + 1):
        jpeg(raw_dir / "jpg" / f"image_{i:05d}.jpg")
    # MATLAB row vectors (1, N), as upstream.
    savemat(raw_dir / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(
        raw_dir / "setid.mat",
        {
            "trnid": np.array([[3, 1, 8]], dtype=np.uint16),
            "valid": np.array([[2, 7]], dtype=np.uint16),
            "tstid": np.array([[6, 4, 5]], dtype=np.uint16),
        },
    )

    def rows(ids: list[int], labs: list[int]) -> Rows:
        return [(f"jpg/image_{i:05d}.jpg", str(lab)) for i, lab in zip(ids, labs)]

    from torchvision.datasets import Flowers102

    return _expected(
        {
            "train": rows([3, 1, 8], [4, 0, 49]),
            "val": rows([2, 7], [101, 2]),
            "test": rows([6, 4, 5], [101, 0, 76]),
        },
        list(Flowers102.classes),
    )


def write_oxford_pets(raw_dir: Path) -> dict:
    """``images/<Name>_<n>.jpg`` and ``annotations/{trainval,test}.txt`` (``name class species breed``)."""
    trainval = [
        "american_bulldog_10 2 2 1",
        "Abyssinian_100 1 1 1",
        "Bengal_3 3 1 2",
        "Abyssinian_101 1 1 1",
    ]
    test = ["Bengal_1 3 1 2", "american_bulldog_2 2 2 1"]
    for line in trainval + test:
        jpeg(raw_dir / "images" / f"{line.split()[0]}.jpg")
    _text(raw_dir / "annotations" / "trainval.txt", trainval)
    _text(raw_dir / "annotations" / "test.txt", test)
    _text(raw_dir / "annotations" / "list.txt", ["#Image CLASS-ID SPECIES BREED ID", *trainval, *test])
    return _expected(
        {
            "trainval": [
                ("images/american_bulldog_10.jpg", "1"),
                ("images/Abyssinian_100.jpg", "0"),
                ("images/Bengal_3.jpg", "2"),
                ("images/Abyssinian_101.jpg", "0"),
            ],
            "test": [("images/Bengal_1.jpg", "2"), ("images/american_bulldog_2.jpg", "1")],
        },
        ["Abyssinian", "American Bulldog", "Bengal"],
    )


def write_dtd(raw_dir: Path) -> dict:
    """``dtd/images/<class>/<class>_<n>.jpg`` and ``dtd/labels/{train,val,test}1.txt``."""
    classes = ["banded", "dotted", "zigzagged"]
    files = {c: [f"{c}_{n:04d}.jpg" for n in (2, 10, 31)] for c in classes}
    for c, names in files.items():
        for name in names:
            jpeg(raw_dir / "dtd" / "images" / c / name)
    (raw_dir / "dtd" / "imdb").mkdir(parents=True)
    (raw_dir / "dtd" / "imdb" / "imdb.mat").write_bytes(b"not read")
    parts = {
        split: [f"{c}/{files[c][k]}" for c in reversed(classes)]
        for k, split in enumerate(("train", "val", "test"))
    }
    for split, lines in parts.items():
        _text(raw_dir / "dtd" / "labels" / f"{split}1.txt", lines)
        _text(raw_dir / "dtd" / "labels" / f"{split}2.txt", lines[:1])  # other partitions: not read
    index = {c: str(i) for i, c in enumerate(classes)}
    splits = {
        split: [(f"dtd/images/{e}", index[e.split("/")[0]]) for e in lines] for split, lines in parts.items()
    }
    splits["all"] = [(f"dtd/images/{c}/{n}", index[c]) for c in classes for n in files[c]]
    return _expected(splits, classes)


def write_places365_val(raw_dir: Path, n: int = 12) -> dict:
    """``val_256/Places365_val_%08d.jpg`` plus the standard devkit's category and val lists."""
    categories = ["/a/airfield", "/b/bakery/shop", "/c/canyon"]
    _text(raw_dir / "categories_places365.txt", [f"{c} {i}" for i, c in enumerate(categories)])
    names = [f"Places365_val_{i:08d}.jpg" for i in range(1, n + 1)]
    labels = [i % 3 for i in range(n)]
    for name in names:
        jpeg(raw_dir / "val_256" / name)
    _text(raw_dir / "places365_val.txt", [f"{nm} {lab}" for nm, lab in zip(names, labels)])
    _text(raw_dir / "places365_train_standard.txt", ["/a/airfield/00000001.jpg 0"])  # not read
    return _expected({"val": [(f"val_256/{nm}", str(lab)) for nm, lab in zip(names, labels)]}, categories)


VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip


def write_voc2012(raw_dir: Path) -> dict:
    """``VOCdevkit/VOC2012/{JPEGImages,ImageSets/Main}`` with ``<class>_<split>.txt`` flags 1/0/-1."""
    base = raw_dir / "VOCdevkit" / "VOC2012"
    main = base / "ImageSets" / "Main"
    # image id -> {class: flag}; unlisted classes are -1
    flags = {
        "train": {
            "2008_000008": {"horse": "1", "person": "1"},
            "2008_000015": {"bottle": "1", "tvmonitor": "1", "aeroplane": "0"},
            "2008_000019": {"dog": "0"},  # only a difficult dog: no label
            "2007_000032": {"aeroplane": "1"},
        },
        "val": {"2008_000002": {"tvmonitor": "1"}, "2008_000003": {"person": "1", "train": "1", "cat": "0"}},
    }
    for split, images in flags.items():
        _text(main / f"{split}.txt", list(images))
        for cls in VOC_CLASSES:
            # upstream pads positives with two spaces: "2008_000008  1"
            _text(
                main / f"{cls}_{split}.txt",
                [f"{i} {' ' if f.get(cls) == '1' else ''}{f.get(cls, '-1')}" for i, f in images.items()],
            )
        for image in images:
            jpeg(base / "JPEGImages" / f"{image}.jpg")
    _text(main / "trainval.txt", [*flags["train"], *flags["val"]])  # not read
    p = "VOCdevkit/VOC2012/JPEGImages/"
    return _expected(
        {
            "train": [
                (p + "2008_000008.jpg", "12 14"),
                (p + "2008_000015.jpg", "4 19"),
                (p + "2008_000019.jpg", ""),
                (p + "2007_000032.jpg", "0"),
            ],
            "val": [(p + "2008_000002.jpg", "19"), (p + "2008_000003.jpg", "14 18")],
        },
        VOC_CLASSES,
    )


#: The 10 ids of 1..90 that COCO 2014 leaves unused; the other 80 are its category ids.
COCO_GAPS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_IDS = [i for i in range(1, 91) if i not in COCO_GAPS]


def coco_instances(images: dict[int, str], annotations: list[tuple[int, int]]) -> dict:
    """A minimal ``instances_*2014.json``: 80 categories listed out of id order."""
    categories = [{"id": cid, "name": f"cat{cid}", "supercategory": "x"} for cid in reversed(COCO_IDS)]
    return {
        "info": {},
        "licenses": [],
        "images": [{"id": i, "file_name": n, "height": 8, "width": 8} for i, n in images.items()],
        "annotations": [
            {"id": k, "image_id": i, "category_id": c, "iscrowd": 0, "bbox": [0, 0, 1, 1], "area": 1}
            for k, (i, c) in enumerate(annotations)
        ],
        "categories": categories,
    }


def write_coco2014(raw_dir: Path) -> dict:
    """``{train,val}2014/COCO_*.jpg`` and ``annotations/instances_{train,val}2014.json``."""
    train = {9: "COCO_train2014_000000000009.jpg", 25: "COCO_train2014_000000000025.jpg",
             30: "COCO_train2014_000000000030.jpg"}  # fmt: skip
    val = {42: "COCO_val2014_000000000042.jpg", 73: "COCO_val2014_000000000073.jpg"}
    # image 30 has no annotation; category 90 is index 79, 13 is index 11, 1 is index 0
    train_ann = [(9, 90), (9, 1), (9, 90), (25, 13)]
    val_ann = [(42, 1), (73, 44), (73, 46)]
    for split, images, ann in (("train", train, train_ann), ("val", val, val_ann)):
        for name in images.values():
            jpeg(raw_dir / f"{split}2014" / name)
        path = raw_dir / "annotations" / f"instances_{split}2014.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco_instances(images, ann)))
    return _expected(
        {
            "train": [
                ("train2014/COCO_train2014_000000000009.jpg", "0 79"),
                ("train2014/COCO_train2014_000000000025.jpg", "11"),
                ("train2014/COCO_train2014_000000000030.jpg", ""),
            ],
            # 44 -> index 39 (ids 12, 26, 29, 30 skipped below it), 46 -> index 40
            "val": [
                ("val2014/COCO_val2014_000000000042.jpg", "0"),
                ("val2014/COCO_val2014_000000000073.jpg", "39 40"),
            ],
        },
        [f"cat{cid}" for cid in COCO_IDS],
    )


NUS_CONCEPTS = [f"concept{i:02d}" for i in range(81)]


def write_nuswide(raw_dir: Path) -> dict:
    """``ConceptsList/Concepts81.txt``, ``ImageList/{Train,Test}Imagelist.txt`` (Windows paths),
    ``Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt`` and ``Flickr/<folder>/*.jpg``."""
    _text(raw_dir / "ConceptsList" / "Concepts81.txt", NUS_CONCEPTS)
    # (image, concept indices); images without a concept are dropped by the parser
    train = [("actor\\0001_2124494179.jpg", [0, 80]), ("actor\\0002_174174086.jpg", []),
             ("zebra\\0003_1.jpg", [5])]  # fmt: skip
    test = [(f"water\\{k:04d}_{k}.jpg", [k % 81] if k != 3 else []) for k in range(1, 9)]
    for part, items, prefix in (("Train", train, ""), ("Test", test, "C:\\ImageData\\Flickr\\")):
        _text(raw_dir / "ImageList" / f"{part}Imagelist.txt", [prefix + name for name, _ in items])
        for c, concept in enumerate(NUS_CONCEPTS):
            _text(
                raw_dir / "Groundtruth" / "TrainTestLabels" / f"Labels_{concept}_{part}.txt",
                [f"{int(c in labels)} " for _, labels in items],  # upstream lines end in a space
            )
        for name, _ in items:
            jpeg(raw_dir / "Flickr" / name.replace("\\", "/"))

    def row(name: str, labels: list[int]) -> tuple[str, str]:
        return "Flickr/" + name.replace("\\", "/"), " ".join(map(str, labels))

    kept_test = [row(n, lab) for n, lab in test if lab]
    # EDGE's split: np.random.seed(999); np.random.shuffle(list); first n // 2 -> val, rest -> test
    np.random.RandomState(999).shuffle(kept_test)
    half = len(kept_test) // 2
    return _expected(
        {
            "train": [row(n, lab) for n, lab in train if lab],
            "val": kept_test[:half],
            "test": kept_test[half:],
        },
        NUS_CONCEPTS,
    )


def write_mos_ood(raw_dir: Path, folder: str, n: int = 3) -> dict:
    """``<folder>/images/*.jpg`` as in the MOS archives iNaturalist/SUN/Places.tar.gz."""
    names = [f"{k:032x}.jpg" for k in (7, 3, 11, 5)[:n]]
    for name in names:
        jpeg(raw_dir / folder / "images" / name)
    return _expected({"test": [(f"{folder}/images/{nm}", "-1") for nm in names]}, [])

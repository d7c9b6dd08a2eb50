"""Paper-scale image datasets kept as file lists: catalog entries and parsers to the list form.

Each dataset here has a module-level :class:`~oodflow.data.catalog.DatasetSpec` constant (all
collected in :data:`SPECS`) and a parser ``parse_<name>(raw_dir, out_dir) -> dict``. ``raw_dir`` is
the folder where the resources were downloaded and the archives unpacked, each archive's top-level
folder kept (``raw_dir/food-101/images/...``); entries may be symbolic links, as made by
:func:`oodflow.steps.prepare`. A parser reads the upstream split and label files directly (no
torchvision dataset class is instantiated), and writes the *list form* of
:mod:`oodflow.data.catalog` to ``out_dir``:

* ``<split>.tsv``: header ``path\\tlabel``; ``path`` relative to ``raw_dir`` with ``/`` separators;
  ``label`` a class index, ``-1`` for OOD-only sets, or for multi-label sets the space-separated,
  ascending indices of the labels present (empty when none); rows sorted by ``path``;
* ``prepared.json`` (written last): dataset name, form, per-split counts and class names;
* any extra record a dataset documents (Places365: the index file of its derived OOD subset).

Every file is written atomically through :mod:`oodflow.io`. A parser validates the layout before it
writes anything: a missing split file, a split file that lists an image that does not exist, a
``.mat`` file without the expected variables, a label outside its range, ... raise
:class:`~oodflow.io.FormatError` naming the file. Layout facts follow the torchvision 0.29 dataset
classes where one exists; facts that could not be checked are marked ``UNVERIFIED`` in the notes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data.catalog import DatasetSpec, Resource
from oodflow.io import FormatError, read_json, write_json, write_text

_MODULE = "oodflow.data.sources.large"

#: A label: one class index (``-1`` for none) or the ascending indices of a multi-label set.
Label = int | tuple[int, ...]
Row = tuple[str, Label]

#: File endings accepted as images when a folder (rather than a split file) defines a set.
IMAGE_SUFFIXES = (".jpg", ".jpeg")


# ------------------------------------------------------------------------------------ helpers
def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FormatError(f"{path}: missing ({what})")
    return path


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FormatError(f"{path}: missing folder ({what})")
    return path


def _read_lines(path: Path, what: str) -> list[str]:
    """The non-blank lines of a text file, stripped (CRLF endings tolerated)."""
    _require_file(path, what)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(f"{path}: not UTF-8 text ({err})") from None
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line]


def _check_images(raw_dir: Path, paths: Iterable[str], listed_in: object) -> None:
    """Raise unless every ``raw_dir/path`` is a file; ``listed_in`` names the listing."""
    missing = [p for p in paths if not (raw_dir / p).is_file()]
    if missing:
        raise FormatError(
            f"{listed_in}: lists {len(missing)} image(s) that do not exist under {raw_dir}, "
            f"e.g. '{missing[0]}'"
        )


def _check_unique(items: Sequence[str], path: Path, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise FormatError(f"{path}: {what} '{item}' appears twice")
        seen.add(item)


def _folder_images(folder: Path, raw_dir: Path) -> list[str]:
    """The images directly inside ``folder`` as sorted paths relative to ``raw_dir``.

    Hidden entries (``.name``) are skipped; a subfolder or a file that is not a JPEG is an error, so
    that a folder laid out differently than expected is never read silently.
    """
    rel = Path(os.path.relpath(folder, raw_dir)).as_posix()
    paths = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_file() or not entry.name.lower().endswith(IMAGE_SUFFIXES):
            raise FormatError(f"{Path(entry.path)}: unexpected entry (expected only JPEG files here)")
        paths.append(f"{rel}/{entry.name}")
    return paths


def _parse_int(text: str, path: Path, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{path}: {what} '{text}' is not an integer") from None


def _load_mat(path: Path, keys: Sequence[str], what: str) -> dict[str, np.ndarray]:
    """Integer vectors ``keys`` of a MATLAB file (scipy is imported here, on first use)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    _require_file(path, what)
    try:
        data = loadmat(path, squeeze_me=True)
    except (MatReadError, ValueError, OSError, TypeError) as err:
        raise FormatError(f"{path}: not a readable MATLAB file ({err})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        present = ", ".join(sorted(k for k in data if not k.startswith("__"))) or "nothing"
        raise FormatError(f"{path}: missing variable(s) {', '.join(missing)} (has: {present})")
    out = {}
    for key in keys:
        arr = np.atleast_1d(np.asarray(data[key]))
        integral = arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and bool(np.all(arr == np.round(arr))))
        if arr.ndim != 1 or arr.size == 0 or not integral:
            raise FormatError(f"{path}: variable '{key}' is not a non-empty vector of integers")
        out[key] = arr.astype(np.int64)
    return out


def _format_label(label: Label) -> str:
    if isinstance(label, tuple):
        return " ".join(str(i) for i in sorted(label))
    return str(label)


def _write_prepared(
    out_dir: Path, dataset: str, splits: dict[str, list[Row]], classes: Sequence[str]
) -> dict[str, Any]:
    """Write ``<split>.tsv`` for every split, then ``prepared.json``; return the latter's content."""
    out_dir = Path(out_dir)
    counts = {}
    for split, rows in splits.items():
        rows = sorted(rows, key=lambda row: row[0])
        for (a, _), (b, _) in zip(rows, rows[1:]):
            if a == b:
                raise FormatError(f"{dataset}: split '{split}' lists '{a}' twice")
        odd = next((p for p, _ in rows if any(c in p for c in "\t\r\n\\")), None)
        if odd is not None:
            raise FormatError(f"{dataset}: split '{split}' has a path unfit for a TSV file: {odd!r}")
        lines = ["path\tlabel", *(f"{path}\t{_format_label(label)}" for path, label in rows)]
        write_text(out_dir / f"{split}.tsv", "\n".join(lines) + "\n")
        counts[split] = {"count": len(rows)}
    summary = {"dataset": dataset, "form": "list", "splits": counts, "classes": list(classes)}
    write_json(out_dir / "prepared.json", summary)
    return summary


# ------------------------------------------------------------------------------------ Food-101
def parse_food101(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Food-101: ``food-101/meta/{train,test}.txt`` list ``<class>/<id>`` of ``images/<class>/<id>.jpg``.

    Class indices follow ``meta/classes.txt``, which upstream is alphabetical and therefore equals
    torchvision's order (sorted class names); a file that is not sorted is rejected.
    """
    raw_dir = Path(raw_dir)
    base = raw_dir / "food-101"
    _require_dir(base / "images", "food-101 images")
    classes_file = base / "meta" / "classes.txt"
    classes = _read_lines(classes_file, "Food-101 class names")
    _check_unique(classes, classes_file, "class")
    if classes != sorted(classes):
        raise FormatError(f"{classes_file}: class names are not in alphabetical order, as upstream")
    index = {name: i for i, name in enumerate(classes)}
    splits = {}
    for split in ("train", "test"):
        listing = base / "meta" / f"{split}.txt"
        rows: list[Row] = []
        for entry in _read_lines(listing, f"Food-101 {split} split"):
            cls, sep, stem = entry.partition("/")
            if not sep or not stem or "/" in stem or cls not in index:
                raise FormatError(f"{listing}: '{entry}' is not '<class>/<id>' with a class of classes.txt")
            rows.append((f"food-101/images/{entry}.jpg", index[cls]))
        _check_images(raw_dir, (p for p, _ in rows), listing)
        splits[split] = rows
    return _write_prepared(out_dir, "food101", splits, classes)


# ---------------------------------------------------------------------------------- Flowers102
#: Split -> variable of ``setid.mat`` holding its 1-based image ids (torchvision's mapping).
FLOWERS_SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}
FLOWERS_CLASSES = 102


def _flowers_class_names() -> list[str]:
    """The 102 flower names in label order, as torchvision lists them (not stored in the files)."""
    from torchvision.datasets import Flowers102

    names = list(Flowers102.classes)
    if len(names) != FLOWERS_CLASSES:
        raise RuntimeError(f"torchvision lists {len(names)} Flowers102 classes, expected {FLOWERS_CLASSES}")
    return names


def parse_flowers102(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Flowers102: ``jpg/image_%05d.jpg``, labels 1..102 in ``imagelabels.mat`` (-> 0..101), splits
    as 1-based image ids in ``setid.mat`` (``trnid``, ``valid``, ``tstid``)."""
    raw_dir = Path(raw_dir)
    _require_dir(raw_dir / "jpg", "102flowers.tgz images")
    labels_file = raw_dir / "imagelabels.mat"
    labels = _load_mat(labels_file, ("labels",), "Flowers102 labels")["labels"]
    if labels.min() < 1 or labels.max() > FLOWERS_CLASSES:
        raise FormatError(f"{labels_file}: labels must lie in 1..{FLOWERS_CLASSES}")
    setid_file = raw_dir / "setid.mat"
    set_ids = _load_mat(setid_file, tuple(FLOWERS_SPLIT_KEYS.values()), "Flowers102 splits")
    splits = {}
    for split, key in FLOWERS_SPLIT_KEYS.items():
        ids = set_ids[key]
        bad = ids[(ids < 1) | (ids > labels.size)]
        if bad.size:
            raise FormatError(
                f"{setid_file}: '{key}' holds image id {int(bad[0])} outside 1..{labels.size} "
                f"(the images of {labels_file.name})"
            )
        rows: list[Row] = [(f"jpg/image_{i:05d}.jpg", int(labels[i - 1]) - 1) for i in ids.tolist()]
        _check_images(raw_dir, (p for p, _ in rows), f"{setid_file} '{key}'")
        splits[split] = rows
    return _write_prepared(out_dir, "flowers102", splits, _flowers_class_names())


# ---------------------------------------------------------------------------- Oxford-IIIT Pet
def _pet_breed_name(stem: str) -> str:
    """``american_pit_bull_terrier`` -> ``American Pit Bull Terrier`` (torchvision's class names)."""
    return " ".join(part.title() for part in stem.split("_"))


def parse_oxford_pets(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Oxford-IIIT Pet: ``annotations/{trainval,test}.txt`` lines ``name class_id species breed_id``.

    The label is ``class_id - 1`` (1..37 -> 0..36); class names come from the image names (the
    breed is the name without its trailing ``_<number>``) and must be consistent per class id.
    """
    raw_dir = Path(raw_dir)
    _require_dir(raw_dir / "images", "images.tar.gz")
    breeds: dict[int, str] = {}
    splits = {}
    for split in ("trainval", "test"):
        listing = raw_dir / "annotations" / f"{split}.txt"
        rows: list[Row] = []
        for line in _read_lines(listing, f"Oxford-IIIT Pet {split} split"):
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]):
                raise FormatError(f"{listing}: '{line}' is not 'name class_id species breed_id'")
            name, class_id = fields[0], int(fields[1])
            if class_id < 1:
                raise FormatError(f"{listing}: class id {class_id} of '{name}' is not 1-based")
            breed = name.rsplit("_", 1)[0]
            known = breeds.setdefault(class_id, breed)
            if known != breed:
                raise FormatError(f"{listing}: class id {class_id} names both '{known}' and '{breed}'")
            rows.append((f"images/{name}.jpg", class_id - 1))
        _check_images(raw_dir, (p for p, _ in rows), listing)
        splits[split] = rows
    if not breeds:
        raise FormatError(f"{raw_dir / 'annotations'}: the split files list no image")
    absent = sorted(set(range(1, max(breeds) + 1)) - set(breeds))
    if absent:
        raise FormatError(f"{raw_dir / 'annotations'}: no image of class id(s) {absent} in any split")
    classes = [_pet_breed_name(breeds[i]) for i in range(1, max(breeds) + 1)]
    return _write_prepared(out_dir, "oxford_pets", splits, classes)


# ----------------------------------------------------------------------------------------- DTD
DTD_PARTITION = 1


def parse_dtd(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """DTD: ``dtd/images/<class>/*.jpg``; partition-1 splits from ``dtd/labels/{train,val,test}1.txt``
    (lines ``<class>/<file>``); split ``all`` holds every image (the Textures OOD set).

    Class indices follow the sorted class folders (torchvision sorts the class names of a split
    file, and every split file holds all 47 classes, so the orders agree).
    """
    raw_dir = Path(raw_dir)
    images = _require_dir(raw_dir / "dtd" / "images", "dtd-r1.0.1.tar.gz images")
    folders = sorted((e for e in os.scandir(images) if not e.name.startswith(".")), key=lambda e: e.name)
    odd = next((e for e in folders if not e.is_dir()), None)
    if odd is not None:
        raise FormatError(f"{Path(odd.path)}: unexpected file (expected one folder per class)")
    classes = sorted(e.name for e in folders)
    if not classes:
        raise FormatError(f"{images}: no class folders")
    index = {name: i for i, name in enumerate(classes)}
    splits: dict[str, list[Row]] = {}
    for split in ("train", "val", "test"):
        listing = raw_dir / "dtd" / "labels" / f"{split}{DTD_PARTITION}.txt"
        rows: list[Row] = []
        for entry in _read_lines(listing, f"DTD {split} split of partition {DTD_PARTITION}"):
            cls, sep, name = entry.partition("/")
            if not sep or not name or "/" in name or cls not in index:
                raise FormatError(f"{listing}: '{entry}' is not '<class>/<file>' with a class of {images}")
            rows.append((f"dtd/images/{entry}", index[cls]))
        _check_images(raw_dir, (p for p, _ in rows), listing)
        splits[split] = rows
    splits["all"] = [(path, index[cls]) for cls in classes for path in _folder_images(images / cls, raw_dir)]
    return _write_prepared(out_dir, "dtd", splits, classes)


# ------------------------------------------------------------------------------------- Places365
#: Size and seed of the derived Places365 OOD subset ``ood10k`` (drawn from the val split).
PLACES_OOD_SIZE = 10_000
PLACES_OOD_SEED = 0
PLACES_OOD_INDEX = "ood10k.index.json"


def _places_classes(path: Path) -> list[str]:
    by_index: dict[int, str] = {}
    for line in _read_lines(path, "Places365 categories"):
        fields = line.split()
        if len(fields) != 2:
            raise FormatError(f"{path}: '{line}' is not '<category> <index>'")
        idx = _parse_int(fields[1], path, "category index")
        if idx in by_index:
            raise FormatError(f"{path}: category index {idx} appears twice")
        by_index[idx] = fields[0]
    if sorted(by_index) != list(range(len(by_index))):
        raise FormatError(f"{path}: category indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def parse_places365_val(raw_dir: Path, out_dir: Path, ood_size: int = PLACES_OOD_SIZE) -> dict[str, Any]:
    """Places365-Standard validation set (256x256) plus the derived OOD subset ``ood10k``.

    ``places365_val.txt`` lines ``<file> <class>`` name images of ``val_256/``; class names by index
    come from ``categories_places365.txt``. ``ood10k`` holds ``ood_size`` images drawn without
    replacement from the val rows (sorted by path) with ``numpy.random.default_rng(0)``, their
    indices sorted; they keep their Places365 class labels. The draw is recorded in
    ``ood10k.index.json`` (seed, generator, population, sorted row indices into ``val.tsv``).
    """
    if isinstance(ood_size, bool) or not isinstance(ood_size, int) or ood_size < 1:
        raise ValueError(f"ood_size must be a positive integer, got {ood_size!r}")
    raw_dir = Path(raw_dir)
    classes = _places_classes(raw_dir / "categories_places365.txt")
    _require_dir(raw_dir / "val_256", "val_256.tar images")
    listing = raw_dir / "places365_val.txt"
    rows: list[Row] = []
    for line in _read_lines(listing, "Places365 val file list"):
        fields = line.split()
        if len(fields) != 2:
            raise FormatError(f"{listing}: '{line}' is not '<image> <class index>'")
        label = _parse_int(fields[1], listing, "class index")
        if not 0 <= label < len(classes):
            raise FormatError(f"{listing}: class index {label} is outside 0..{len(classes) - 1}")
        rows.append((f"val_256/{fields[0].lstrip('/')}", label))
    _check_images(raw_dir, (p for p, _ in rows), listing)
    rows.sort(key=lambda row: row[0])
    if ood_size > len(rows):
        raise FormatError(f"{listing}: lists {len(rows)} images, too few to draw an OOD subset of {ood_size}")
    picked = np.sort(np.random.default_rng(PLACES_OOD_SEED).choice(len(rows), size=ood_size, replace=False))
    record = {
        "source_split": "val",
        "generator": "numpy.random.default_rng(seed).choice(population, size, replace=False), sorted",
        "seed": PLACES_OOD_SEED,
        "population": len(rows),
        "size": ood_size,
        "indices": picked.tolist(),
    }
    write_json(Path(out_dir) / PLACES_OOD_INDEX, record)
    splits = {"val": rows, "ood10k": [rows[i] for i in picked.tolist()]}
    return _write_prepared(out_dir, "places365_val", splits, classes)


# ------------------------------------------------------------------------------ PASCAL VOC 2012
#: The 20 VOC classes in the order of their label indices (alphabetical, the devkit's order).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip
VOC_FLAGS = {"1": True, "0": False, "-1": False}  # present / difficult only (absent) / absent


def parse_voc2012(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """PASCAL VOC 2012 classification sets as multi-label lists.

    ``VOCdevkit/VOC2012/ImageSets/Main/{train,val}.txt`` list image ids; ``<class>_<split>.txt``
    flags each of them ``1`` (present), ``-1`` (absent) or ``0`` (only "difficult" objects). The
    label is the indices of the classes flagged ``1``; ``0`` counts as absent.
    """
    raw_dir = Path(raw_dir)
    base = raw_dir / "VOCdevkit" / "VOC2012"
    _require_dir(base / "JPEGImages", "VOC 2012 JPEG images")
    main = base / "ImageSets" / "Main"
    splits = {}
    for split in ("train", "val"):
        ids_file = main / f"{split}.txt"
        ids = _read_lines(ids_file, f"VOC 2012 {split} image ids")
        _check_unique(ids, ids_file, "image id")
        present: dict[str, list[int]] = {i: [] for i in ids}
        for c, cls in enumerate(VOC_CLASSES):
            class_file = main / f"{cls}_{split}.txt"
            seen: set[str] = set()
            for line in _read_lines(class_file, f"VOC 2012 '{cls}' flags of the {split} images"):
                fields = line.split()
                if len(fields) != 2 or fields[1] not in VOC_FLAGS:
                    raise FormatError(f"{class_file}: '{line}' is not '<image id> 1|0|-1'")
                if fields[0] not in present:
                    raise FormatError(f"{class_file}: lists '{fields[0]}', which {ids_file.name} does not")
                seen.add(fields[0])
                if VOC_FLAGS[fields[1]]:
                    present[fields[0]].append(c)
            if len(seen) != len(ids):
                lacking = next(i for i in ids if i not in seen)
                raise FormatError(
                    f"{class_file}: flags {len(seen)} of the {len(ids)} images of {ids_file.name} "
                    f"(e.g. not '{lacking}')"
                )
        rows: list[Row] = [(f"VOCdevkit/VOC2012/JPEGImages/{i}.jpg", tuple(present[i])) for i in ids]
        _check_images(raw_dir, (p for p, _ in rows), ids_file)
        splits[split] = rows
    return _write_prepared(out_dir, "voc2012", splits, VOC_CLASSES)


# ----------------------------------------------------------------------------------- COCO 2014
COCO_CATEGORIES = 80


def _coco_split(raw_dir: Path, split: str) -> tuple[list[Row], list[str]]:
    """Rows and class names (by sorted category id) of ``annotations/instances_<split>2014.json``."""
    ann_file = raw_dir / "annotations" / f"instances_{split}2014.json"
    data = read_json(_require_file(ann_file, f"COCO 2014 {split} instances"))
    if not isinstance(data, dict) or any(
        not isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise FormatError(f"{ann_file}: expected an object with lists 'images', 'annotations', 'categories'")
    try:
        names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        files = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        pairs = [(int(a["image_id"]), int(a["category_id"])) for a in data["annotations"]]
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{ann_file}: an entry lacks a field or has a bad value ({err!r})") from None
    if len(names) != len(data["categories"]) or len(files) != len(data["images"]):
        raise FormatError(f"{ann_file}: duplicate category or image ids")
    if len(names) != COCO_CATEGORIES:
        raise FormatError(f"{ann_file}: {len(names)} categories, expected {COCO_CATEGORIES}")
    index = {cid: i for i, cid in enumerate(sorted(names))}
    labels: dict[int, set[int]] = {image_id: set() for image_id in files}
    for image_id, category_id in pairs:
        if image_id not in labels:
            raise FormatError(f"{ann_file}: an annotation refers to image id {image_id}, which is not listed")
        if category_id not in index:
            raise FormatError(f"{ann_file}: an annotation refers to unknown category id {category_id}")
        labels[image_id].add(index[category_id])
    rows: list[Row] = [
        (f"{split}2014/{name}", tuple(sorted(labels[image_id]))) for image_id, name in files.items()
    ]
    _check_images(raw_dir, (p for p, _ in rows), ann_file)
    return rows, [names[cid] for cid in sorted(names)]


def parse_coco2014(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """MS-COCO 2014 train/val as multi-label lists over the 80 categories.

    Label indices follow the sorted category ids (1..90 with gaps -> 0..79); the label of an image
    is every category of its instance annotations (crowd regions included); an image without
    annotations has an empty label.
    """
    raw_dir = Path(raw_dir)
    train, classes = _coco_split(raw_dir, "train")
    val, val_classes = _coco_split(raw_dir, "val")
    if val_classes != classes:
        raise FormatError(
            f"{raw_dir / 'annotations' / 'instances_val2014.json'}: categories differ from the train file's"
        )
    return _write_prepared(out_dir, "coco2014", {"train": train, "val": val}, classes)


# ------------------------------------------------------------------------------------ NUS-WIDE
NUSWIDE_CONCEPTS = 81
#: EDGE/JointEnergy split the (labelled) test list in halves after a shuffle with this legacy seed.
NUSWIDE_SPLIT_SEED = 999
_NUSWIDE_PREFIX = "c:\\imagedata\\flickr\\"


def _nuswide_image(entry: str) -> str:
    """``C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg`` (prefix optional) -> ``Flickr/actor/...``."""
    if entry.lower().startswith(_NUSWIDE_PREFIX):
        entry = entry[len(_NUSWIDE_PREFIX) :]
    return "Flickr/" + entry.replace("\\", "/").lstrip("/")


def _nuswide_part(raw_dir: Path, part: str, concepts: Sequence[str]) -> list[Row]:
    """The images of ``part`` ("Train" or "Test") that have at least one concept, in file order."""
    listing = raw_dir / "ImageList" / f"{part}Imagelist.txt"
    images = [_nuswide_image(e) for e in _read_lines(listing, f"NUS-WIDE {part.lower()} image list")]
    flags = np.zeros((len(images), len(concepts)), dtype=bool)
    for c, concept in enumerate(concepts):
        label_file = raw_dir / "Groundtruth" / "TrainTestLabels" / f"Labels_{concept}_{part}.txt"
        values = _read_lines(label_file, f"NUS-WIDE '{concept}' labels of the {part.lower()} list")
        if len(values) != len(images):
            raise FormatError(
                f"{label_file}: {len(values)} lines, but {listing.name} lists {len(images)} images"
            )
        odd = next((v for v in values if v not in ("0", "1")), None)
        if odd is not None:
            raise FormatError(f"{label_file}: value '{odd}' is not 0 or 1")
        flags[:, c] = np.asarray(values) == "1"
    rows: list[Row] = [
        (path, tuple(np.flatnonzero(row).tolist())) for path, row in zip(images, flags) if row.any()
    ]
    _check_images(raw_dir, (p for p, _ in rows), listing)
    return rows


def parse_nuswide(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """NUS-WIDE as multi-label lists over the 81 concepts of ``ConceptsList/Concepts81.txt``.

    Layout read (see the spec's notes for what is UNVERIFIED): ``ImageList/{Train,Test}Imagelist.txt``,
    ``Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt`` (one 0/1 per listed image) and
    the images under ``Flickr/`` (obtained on request from NUS and placed by the user at
    ``resources/datasets/nuswide/user/Flickr``, which :func:`oodflow.steps.prepare` links into ``raw_dir``).
    As in EDGE, only images with at least one concept are kept; ``train`` is the train list, and the
    test list, shuffled with ``numpy.random.RandomState(999)``, is cut in halves: ``val`` (first
    half, ``n // 2`` images) and ``test`` (the rest).
    """
    raw_dir = Path(raw_dir)
    concepts_file = raw_dir / "ConceptsList" / "Concepts81.txt"
    concepts = _read_lines(concepts_file, "NUS-WIDE concept names")
    _check_unique(concepts, concepts_file, "concept")
    if len(concepts) != NUSWIDE_CONCEPTS:
        raise FormatError(f"{concepts_file}: {len(concepts)} concepts, expected {NUSWIDE_CONCEPTS}")
    _require_dir(
        raw_dir / "Flickr",
        "NUS-WIDE images, obtained on request from NUS; put them at resources/datasets/nuswide/user/Flickr",
    )
    train = _nuswide_part(raw_dir, "Train", concepts)
    test_all = _nuswide_part(raw_dir, "Test", concepts)
    order = np.random.RandomState(NUSWIDE_SPLIT_SEED).permutation(len(test_all)).tolist()
    shuffled = [test_all[i] for i in order]
    half = len(shuffled) // 2
    splits = {"train": train, "val": shuffled[:half], "test": shuffled[half:]}
    return _write_prepared(out_dir, "nuswide", splits, concepts)


# ----------------------------------------------------------------------- ImageNet OOD (MOS) sets
def _parse_ood_folder(raw_dir: Path, out_dir: Path, dataset: str, folder: str) -> dict[str, Any]:
    """An OOD-only folder of JPEGs, ``<folder>/images/*.jpg``: split ``test``, label ``-1``."""
    raw_dir = Path(raw_dir)
    images = _require_dir(raw_dir / folder / "images", f"{folder}.tar.gz images")
    paths = _folder_images(images, raw_dir)
    if not paths:
        raise FormatError(f"{images}: holds no JPEG images")
    return _write_prepared(out_dir, dataset, {"test": [(p, -1) for p in paths]}, [])


def parse_inaturalist_ood(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The iNaturalist OOD set of the MOS ImageNet benchmark (``iNaturalist/images/*.jpg``)."""
    return _parse_ood_folder(raw_dir, out_dir, "inaturalist_ood", "iNaturalist")


def parse_sun_ood(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The SUN OOD set of the MOS ImageNet benchmark (``SUN/images/*.jpg``)."""
    return _parse_ood_folder(raw_dir, out_dir, "sun_ood", "SUN")


def parse_places_ood(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """The Places OOD set of the MOS ImageNet benchmark (``Places/images/*.jpg``)."""
    return _parse_ood_folder(raw_dir, out_dir, "places_ood", "Places")


# ------------------------------------------------------------------------------------ catalog
_VGG = "https://www.robots.ox.ac.uk/~vgg/data"
_PLACES = "http://data.csail.mit.edu/places/places365"
_COCO = "http://images.cocodataset.org"
_NUS = "http://dl.nextcenter.org/public/nuswide"
_MOS = "pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset"

FOOD101 = DatasetSpec(
    name="food101",
    resources=(
        Resource(
            "food-101.tar.gz",
            ("http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",),
            md5="85eeb15f3717b99a5da872d97d918f87",
        ),
    ),
    homepage="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_food101",
    form="list",
    splits=("train", "test"),
    approx_size="5.0 GB",
    notes="101 classes, 750 train / 250 test images per class (75,750 / 25,250), max side 512 px; "
    "class indices = alphabetical order of meta/classes.txt (= torchvision's). ID set of the Food-101 "
    "OOD project.",
)

FLOWERS102 = DatasetSpec(
    name="flowers102",
    resources=(
        Resource(
            "102flowers.tgz", (f"{_VGG}/flowers/102/102flowers.tgz",), md5="52808999861908f626f3c1f4e79d11fa"
        ),
        Resource(
            "imagelabels.mat",
            (f"{_VGG}/flowers/102/imagelabels.mat",),
            md5="e0620be6f572b9609742df49c70aed4d",
        ),
        Resource("setid.mat", (f"{_VGG}/flowers/102/setid.mat",), md5="a5357ecc9cb78c4bef273ce3793fc85c"),
    ),
    homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_flowers102",
    form="list",
    splits=("train", "val", "test"),
    approx_size="330 MB",
    notes="8,189 images; labels 1..102 in imagelabels.mat become 0..101; splits from setid.mat "
    "(trnid/valid/tstid, 1,020 / 1,020 / 6,149 images); class names from torchvision's Flowers102. "
    "Near-OOD set of the Food-101 project (which split it used is UNVERIFIED; docs/food101.md).",
)

OXFORD_PETS = DatasetSpec(
    name="oxford_pets",
    resources=(
        Resource(
            "images.tar.gz", (f"{_VGG}/pets/data/images.tar.gz",), md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"
        ),
        Resource(
            "annotations.tar.gz",
            (f"{_VGG}/pets/data/annotations.tar.gz",),
            md5="95a8c909bbe2e81eed6a22bccdf3f68f",
        ),
    ),
    homepage="https://www.robots.ox.ac.uk/~vgg/data/pets/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_oxford_pets",
    form="list",
    splits=("trainval", "test"),
    approx_size="800 MB",
    notes="37 breeds; annotations/{trainval,test}.txt class_id 1..37 become 0..36; class names from "
    "the image names, as torchvision derives them. Near-OOD set of the Food-101 project (split used "
    "UNVERIFIED).",
)

DTD = DatasetSpec(
    name="dtd",
    resources=(
        Resource(
            "dtd-r1.0.1.tar.gz",
            (
                f"{_VGG}/dtd/download/dtd-r1.0.1.tar.gz",
                "https://thor.robots.ox.ac.uk/datasets/dtd/dtd-r1.0.1.tar.gz",
            ),
            md5="fff73e5086ae6bdbea199a49dfb8a4c1",
        ),
    ),
    homepage="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_dtd",
    form="list",
    splits=("train", "val", "test", "all"),
    approx_size="625 MB",
    notes="47 texture classes x 120 images; train/val/test = partition 1 of dtd/labels (1,880 each); "
    "'all' = all 5,640 images, the Textures OOD set (labels kept as class indices). The thor mirror "
    "is named by third-party READMEs only (the md5 guards it).",
)

PLACES365_VAL = DatasetSpec(
    name="places365_val",
    resources=(
        Resource("val_256.tar", (f"{_PLACES}/val_256.tar",), md5="e27b17d8d44f4af9a78502beb927f808"),
        Resource(
            "filelist_places365-standard.tar",
            (f"{_PLACES}/filelist_places365-standard.tar",),
            md5="35a0585fee1fa656440f3ab298f8479c",
        ),
    ),
    homepage="http://places2.csail.mit.edu/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_places365_val",
    form="list",
    splits=("val", "ood10k"),
    approx_size="0.6 GB",
    notes="365 classes x 100 val images (256x256); file list and category names from the standard "
    "devkit (torchvision layout). 'ood10k' is DERIVED here: 10,000 val images drawn with "
    "numpy.random.default_rng(0) without replacement, sorted, recorded in ood10k.index.json. The "
    "10k Places365 OOD subsets of the papers are NOT canonical (drawn from test_256, which images "
    "is not fixed: outlier-exposure #2, energy_ood #20; docs/references.md), so ours is a documented "
    "deviation, not a reproduction of theirs.",
)

VOC2012 = DatasetSpec(
    name="voc2012",
    resources=(
        Resource(
            "VOCtrainval_11-May-2012.tar",
            (
                "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                "https://pjreddie.com/media/files/VOCtrainval_11-May-2012.tar",
            ),
            md5="6cd6e144f989b92b3379bac3b3de84fd",
        ),
    ),
    homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    licence="see homepage",
    parser=f"{_MODULE}:parse_voc2012",
    form="list",
    splits=("train", "val"),
    approx_size="2.0 GB",
    notes="Multi-label over the 20 classes (alphabetical); ImageSets/Main train 5,717 / val 5,823 "
    "images, the sizes of EDGE's voc12-{train,val}.mat; EDGE evaluates on val. Label = classes "
    "flagged 1; 0 ('difficult' objects only) counts as absent: whether EDGE's .mat labels do the "
    "same is UNVERIFIED. md5 and the thor URL from torchvision 0.29 voc.py; the pjreddie mirror "
    "is the one the JointEnergy README points to.",
)

COCO2014 = DatasetSpec(
    name="coco2014",
    resources=(
        Resource("train2014.zip", (f"{_COCO}/zips/train2014.zip",)),
        Resource("val2014.zip", (f"{_COCO}/zips/val2014.zip",)),
        Resource("annotations_trainval2014.zip", (f"{_COCO}/annotations/annotations_trainval2014.zip",)),
    ),
    homepage="https://cocodataset.org/",
    licence="annotations CC BY 4.0; images: Flickr terms (see homepage)",
    parser=f"{_MODULE}:parse_coco2014",
    form="list",
    splits=("train", "val"),
    approx_size="19 GB",
    notes="Multi-label over the 80 categories, indexed by sorted category id; every instance "
    "annotation counts (crowd included); images without annotations get an empty label (EDGE's "
    "pickles use -1 there and are built with pycocotools: whether it keeps crowd regions is "
    "UNVERIFIED). No md5 is published: sha256 pinned on first download.",
)

NUSWIDE = DatasetSpec(
    name="nuswide",
    resources=(
        Resource("Groundtruth.zip", (f"{_NUS}/Groundtruth.zip",)),
        Resource("ConceptsList.zip", (f"{_NUS}/ConceptsList.zip",)),
        Resource("ImageList.zip", (f"{_NUS}/ImageList.zip",)),
    ),
    homepage="https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html",
    licence="see homepage (images under an agreement form)",
    parser=f"{_MODULE}:parse_nuswide",
    form="list",
    splits=("train", "val", "test"),
    user_supplied=("Flickr",),
    approx_size="metadata ~0.1 GB; images on request",
    notes="269,648 Flickr images, 81 concepts, official train/test lists of 161,789 / 107,859 images. "
    "The images are not downloadable: request them from NUS (agreement form) and put their folder "
    "(Flickr/<concept>/<file>.jpg), or a link to it, at resources/datasets/nuswide/user/Flickr, outside "
    "the rule outputs (the prepare job links it into raw/; it is not DVC-tracked). As in EDGE: only "
    "images with >=1 concept are kept and the "
    "test list is shuffled (RandomState(999)) and halved into val/test. UNVERIFIED: the download "
    "URLs (dl.nextcenter.org, from third-party code; the homepage now points to Hugging Face, "
    "whose NUS-WIDE.zip holds Groundtruth/ and ConceptsList/), that each zip unpacks to a folder of "
    "its own name, the ImageList line format (C:\\ImageData\\Flickr\\<concept>\\<file>.jpg, prefix "
    "optional) and the Flickr/<concept>/<file>.jpg image layout; that EDGE's own lists "
    "(nus_wide_{train,test}_imglist.txt, from JointEnergy) equal the official lists and "
    "TrainTestLabels in content and order, hence that our val/test halves equal EDGE's; the md5s "
    "(none published).",
)


def _mos_spec(name: str, folder: str, size: str) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        resources=(
            Resource(
                f"{folder}.tar.gz", (f"http://{_MOS}/{folder}.tar.gz", f"https://{_MOS}/{folder}.tar.gz")
            ),
        ),
        homepage="https://github.com/deeplearning-wisc/large_scale_ood",
        licence="see homepage",
        parser=f"{_MODULE}:parse_{name}",
        form="list",
        splits=("test",),
        approx_size=size,
        notes=f"OOD set for ImageNet-1k from MOS (Huang & Li, CVPR 2021), 10,000 images with no "
        f"overlap with ImageNet classes; split test, label -1. No md5 published: sha256 pinned on "
        f"first download. UNVERIFIED: the archive layout {folder}/images/*.jpg (from third-party "
        f"loaders), the image count and the download size.",
    )


INATURALIST_OOD = _mos_spec("inaturalist_ood", "iNaturalist", "~0.5 GB")
SUN_OOD = _mos_spec("sun_ood", "SUN", "~1 GB")
PLACES_OOD = _mos_spec("places_ood", "Places", "~1 GB")

#: Name -> spec of every dataset of this module.
SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        FOOD101,
        FLOWERS102,
        OXFORD_PETS,
        DTD,
        PLACES365_VAL,
        VOC2012,
        COCO2014,
        NUSWIDE,
        INATURALIST_OOD,
        SUN_OOD,
        PLACES_OOD,
    )
}

"""Fakes of the list-form datasets: Food-101, Flowers102, Oxford-IIIT Pet, DTD, Places365 (val),
PASCAL VOC 2012, MS-COCO 2014, NUS-WIDE and the MOS ImageNet OOD sets (iNaturalist, SUN, Places).

Each ``fake_<name>(seed)`` returns ``{resource filename: bytes}`` in the upstream packaging (see
:mod:`oodflow.data.sources.large` for the layouts the parsers read). Images are small JPEGs of varied
sides (:data:`~oodflow.smoke.fakes.sizes.LIST_SIDES`), tinted per class (multi-label: the mean tint of
their labels). NUS-WIDE's images are not part of its downloads: :func:`nuswide_user_tree` holds them.
"""

from __future__ import annotations

import json

import numpy as np

from oodflow.smoke.fakes.archives import Tree, pack
from oodflow.smoke.fakes.arrays import labelled
from oodflow.smoke.fakes.formats import encode_image, image, mat_bytes, rng_for, tints
from oodflow.smoke.fakes.sizes import (
    EVAL_PER_CLASS,
    LIST_SIDES,
    MULTILABEL_EVAL_PER_CLASS,
    MULTILABEL_TRAIN_PER_CLASS,
    OOD_IMAGES,
    TRAIN_PER_CLASS,
)

Files = dict[str, bytes]

DTD_CLASSES = tuple(
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted "
    "fibrous flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined "
    "marbled matted meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared "
    "spiralled sprinkled stained stratified striped studded swirly veined waffled woven wrinkled "
    "zigzagged".split()
)
#: The 37 Oxford-IIIT Pet breeds as they appear in the image names (cats capitalised, dogs not).
PET_BREEDS = tuple(
    "Abyssinian Bengal Birman Bombay British_Shorthair Egyptian_Mau Maine_Coon Persian Ragdoll Russian_Blue "
    "Siamese Sphynx american_bulldog american_pit_bull_terrier basset_hound beagle boxer chihuahua "
    "english_cocker_spaniel english_setter german_shorthaired great_pyrenees havanese japanese_chin keeshond "
    "leonberger miniature_pinscher newfoundland pomeranian pug saint_bernard samoyed scottish_terrier "
    "shiba_inu staffordshire_bull_terrier wheaten_terrier yorkshire_terrier".split()
)
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip
COCO_NAMES = tuple(
    "person|bicycle|car|motorcycle|airplane|bus|train|truck|boat|traffic light|fire hydrant|stop sign|"
    "parking meter|bench|bird|cat|dog|horse|sheep|cow|elephant|bear|zebra|giraffe|backpack|umbrella|handbag|"
    "tie|suitcase|frisbee|skis|snowboard|sports ball|kite|baseball bat|baseball glove|skateboard|surfboard|"
    "tennis racket|bottle|wine glass|cup|fork|knife|spoon|bowl|banana|apple|sandwich|orange|broccoli|carrot|"
    "hot dog|pizza|donut|cake|chair|couch|potted plant|bed|dining table|toilet|tv|laptop|mouse|remote|"
    "keyboard|cell phone|microwave|oven|toaster|sink|refrigerator|book|clock|vase|scissors|teddy bear|"
    "hair drier|toothbrush".split("|")
)
#: The 10 ids of 1..90 that COCO 2014 leaves unused; the other 80 are its category ids.
COCO_GAPS = frozenset({12, 26, 29, 30, 45, 66, 68, 69, 71, 83})
COCO_IDS = tuple(i for i in range(1, 91) if i not in COCO_GAPS)
NUS_CONCEPTS = tuple(
    "airport animal beach bear birds boats book bridge buildings cars castle cat cityscape clouds computer "
    "coral cow dancing dog earthquake elk fire fish flags flowers food fox frost garden glacier grass harbor "
    "horses house lake leaf map military moon mountain nighttime ocean person plane plants police protest "
    "railroad rainbow reflection road rocks running sand sign sky snow soccer sports statue street sun "
    "sunset surf swimmers tattoo temple tiger tower town toy train tree valley vehicle water waterfall "
    "wedding whales window zebra".split()
)
#: The seed EDGE/JointEnergy shuffle NUS-WIDE's test list with (see the parser).
NUS_SPLIT_SEED = 999


def _text(lines) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def _sized_jpeg(rng: np.random.Generator, tint: np.ndarray) -> tuple[bytes, int, int]:
    """A JPEG of seeded height and width in :data:`LIST_SIDES`: (bytes, height, width)."""
    lo, hi = LIST_SIDES
    h, w = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    return encode_image(image(rng, tint, h, w)), h, w


def _jpeg(rng: np.random.Generator, tint: np.ndarray) -> bytes:
    return _sized_jpeg(rng, tint)[0]


def multilabels(rng: np.random.Generator, n_classes: int, per_class: int) -> list[tuple[int, ...]]:
    """``n_classes * per_class`` label sets: image ``k`` has first label ``k % n_classes`` (so every
    class appears at least ``per_class`` times) and 0 to 2 other distinct labels."""
    out = []
    for k in range(n_classes * per_class):
        first = k % n_classes
        extra = rng.choice(n_classes - 1, size=int(rng.integers(0, 3)), replace=False)
        out.append((first, *sorted(int((first + 1 + e) % n_classes) for e in extra)))
    return out


def _ml_jpeg(rng: np.random.Generator, colours: np.ndarray, labels: tuple[int, ...]) -> bytes:
    return _jpeg(rng, colours[list(labels)].mean(axis=0))


# --------------------------------------------------------------------------------- Food-101
def fake_food101(seed: int) -> Files:
    rng = rng_for(seed, "food101")
    classes = [f"food_{i:03d}" for i in range(101)]  # alphabetical, as upstream's classes.txt
    colours = tints(rng, 101)
    base = "food-101/"
    ids = rng.choice(
        np.arange(1_000, 4_000_000), size=101 * (TRAIN_PER_CLASS + EVAL_PER_CLASS), replace=False
    )
    tree: Tree = {}
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    k = 0
    for c, cls in enumerate(classes):
        for split, per in (("train", TRAIN_PER_CLASS), ("test", EVAL_PER_CLASS)):
            for _ in range(per):
                entry = f"{cls}/{int(ids[k])}"
                k += 1
                tree[f"{base}images/{entry}.jpg"] = _jpeg(rng, colours[c])
                splits[split].setdefault(cls, []).append(entry)
    tree[base + "meta/classes.txt"] = _text(classes)
    tree[base + "meta/labels.txt"] = _text(c.replace("_", " ").capitalize() for c in classes)
    for split, by_class in splits.items():
        tree[f"{base}meta/{split}.txt"] = _text(e for cls in classes for e in by_class[cls])
        tree[f"{base}meta/{split}.json"] = json.dumps(by_class, sort_keys=True).encode()
    tree[base + "README.txt"] = b"Food-101 (format-exact fake for smoke runs)\n"
    return {"food-101.tar.gz": pack("food-101.tar.gz", tree)}


# ------------------------------------------------------------------------------- Flowers102
def fake_flowers102(seed: int) -> Files:
    """``jpg/image_%05d.jpg`` in ``102flowers.tgz``, 1-based labels and split ids as (1, N) rows."""
    rng = rng_for(seed, "flowers102")
    per = {"trnid": TRAIN_PER_CLASS, "valid": EVAL_PER_CLASS, "tstid": EVAL_PER_CLASS}
    labels = labelled(rng, 102, sum(per.values()))  # of images 1..N, 0-based here
    colours = tints(rng, 102)
    tree = {f"jpg/image_{i + 1:05d}.jpg": _jpeg(rng, colours[lab]) for i, lab in enumerate(labels)}
    ids: dict[str, list[int]] = {key: [] for key in per}
    for c in range(102):
        mine = (np.flatnonzero(labels == c) + 1).tolist()
        start = 0
        for key, n in per.items():
            ids[key] += mine[start : start + n]
            start += n
    setid = {key: np.array([sorted(v)], dtype=np.uint16) for key, v in ids.items()}
    return {
        "102flowers.tgz": pack("102flowers.tgz", tree),
        "imagelabels.mat": mat_bytes({"labels": (labels + 1).astype(np.uint8)[None, :]}),
        "setid.mat": mat_bytes(setid),
    }


# -------------------------------------------------------------------------- Oxford-IIIT Pet
def fake_oxford_pets(seed: int) -> Files:
    rng = rng_for(seed, "oxford_pets")
    breeds = sorted(PET_BREEDS, key=str.lower)  # class ids follow this order, as upstream
    colours = tints(rng, len(breeds))
    images: Tree = {}
    lines: dict[str, list[str]] = {"trainval": [], "test": []}
    species_count = {1: 0, 2: 0}
    for c, breed in enumerate(breeds):
        species = 1 if breed[0].isupper() else 2
        species_count[species] += 1
        n = 0
        for split, per in (("trainval", TRAIN_PER_CLASS), ("test", EVAL_PER_CLASS)):
            for _ in range(per):
                n += 1
                name = f"{breed}_{n}"
                images[f"images/{name}.jpg"] = _jpeg(rng, colours[c])
                lines[split].append(f"{name} {c + 1} {species} {species_count[species]}")
    header = [
        "#Image CLASS-ID SPECIES BREED ID",
        "#ID: 1:37 Class ids",
        "#SPECIES: 1:Cat 2:Dog",
        "#BREED ID: 1-25:Cat 1:12:Dog",
        "#All images with 1st letter as captial are cat images",
        "#images with small first letter are dog images",
    ]
    annotations = {
        "annotations/trainval.txt": _text(lines["trainval"]),
        "annotations/test.txt": _text(lines["test"]),
        "annotations/list.txt": _text([*header, *sorted(lines["trainval"] + lines["test"], key=str.lower)]),
        "annotations/README": b"Oxford-IIIT Pet annotations (format-exact fake for smoke runs)\n",
    }
    return {
        "images.tar.gz": pack("images.tar.gz", images),
        "annotations.tar.gz": pack("annotations.tar.gz", annotations),
    }


# -------------------------------------------------------------------------------------- DTD
def fake_dtd(seed: int) -> Files:
    """``dtd/images/<class>/<class>_%04d.jpg``, the 10 partitions ``dtd/labels/{train,val,test}<p>.txt``."""
    rng = rng_for(seed, "dtd")
    colours = tints(rng, len(DTD_CLASSES))
    per = {"train": TRAIN_PER_CLASS, "val": EVAL_PER_CLASS, "test": EVAL_PER_CLASS}
    tree: Tree = {}
    files: dict[str, list[str]] = {}
    for c, cls in enumerate(DTD_CLASSES):
        numbers = sorted(rng.choice(np.arange(1, 200), size=sum(per.values()), replace=False).tolist())
        files[cls] = [f"{cls}/{cls}_{n:04d}.jpg" for n in numbers]
        for entry in files[cls]:
            tree[f"dtd/images/{entry}"] = _jpeg(rng, colours[c])
    for p in range(1, 11):
        parts: dict[str, list[str]] = {s: [] for s in per}
        for cls in DTD_CLASSES:
            order = rng.permutation(len(files[cls])) if p > 1 else np.arange(len(files[cls]))
            start = 0
            for split, n in per.items():
                parts[split] += sorted(files[cls][i] for i in order[start : start + n])
                start += n
        for split, entries in parts.items():
            tree[f"dtd/labels/{split}{p}.txt"] = _text(entries)
    tree["dtd/labels/labels_joint_anno.txt"] = _text(f"{e} {cls}" for cls in DTD_CLASSES for e in files[cls])
    return {"dtd-r1.0.1.tar.gz": pack("dtd-r1.0.1.tar.gz", tree)}


# ------------------------------------------------------------------------------ Places365 val
PLACES_CLASSES = 365


def fake_places365_val(seed: int) -> Files:
    """``val_256/Places365_val_%08d.jpg`` (``EVAL_PER_CLASS`` per class) and the standard devkit's
    lists. The parser's ``ood_size`` (default 10,000) must be set to at most the val count."""
    rng = rng_for(seed, "places365_val")
    categories = [f"/p/place_{i:03d}" for i in range(PLACES_CLASSES)]
    colours = tints(rng, PLACES_CLASSES)
    labels = labelled(rng, PLACES_CLASSES, EVAL_PER_CLASS)
    names = [f"Places365_val_{i + 1:08d}.jpg" for i in range(len(labels))]
    images = {f"val_256/{n}": _jpeg(rng, colours[lab]) for n, lab in zip(names, labels)}
    lists = {
        "categories_places365.txt": _text(f"{c} {i}" for i, c in enumerate(categories)),
        "places365_train_standard.txt": _text(f"{c}/{1:08d}.jpg {i}" for i, c in enumerate(categories)),
        "places365_val.txt": _text(f"{n} {int(lab)}" for n, lab in zip(names, labels)),
    }
    return {
        "val_256.tar": pack("val_256.tar", images),
        "filelist_places365-standard.tar": pack("filelist_places365-standard.tar", lists),
    }


# ------------------------------------------------------------------------------ PASCAL VOC 2012
def fake_voc2012(seed: int) -> Files:
    """``VOCdevkit/VOC2012/{JPEGImages,ImageSets/Main}``; flags 1 (present), -1 (absent) and a few 0
    (difficult only), the positive and 0 flags padded with a second space, as upstream."""
    rng = rng_for(seed, "voc2012")
    colours = tints(rng, 20)
    base = "VOCdevkit/VOC2012/"
    main = base + "ImageSets/Main/"
    tree: Tree = {}
    ids: dict[str, list[str]] = {}
    flags: dict[str, dict[str, list[str]]] = {}
    serial = 0
    for split, per in (("train", MULTILABEL_TRAIN_PER_CLASS), ("val", MULTILABEL_EVAL_PER_CLASS)):
        ids[split], flags[split] = [], {cls: [] for cls in VOC_CLASSES}
        for labels in multilabels(rng, 20, per):
            serial += 1
            image_id = f"{2008 + serial % 4}_{serial:06d}"
            ids[split].append(image_id)
            tree[f"{base}JPEGImages/{image_id}.jpg"] = _ml_jpeg(rng, colours, labels)
            for c, cls in enumerate(VOC_CLASSES):
                flag = "1" if c in labels else ("0" if rng.random() < 0.05 else "-1")
                flags[split][cls].append(f"{image_id} {' ' if flag != '-1' else ''}{flag}")
    for split in ("train", "val"):
        order = np.argsort(ids[split]).tolist()  # upstream lists are sorted by id
        tree[f"{main}{split}.txt"] = _text(ids[split][i] for i in order)
        for cls in VOC_CLASSES:
            tree[f"{main}{cls}_{split}.txt"] = _text(flags[split][cls][i] for i in order)
    tree[f"{main}trainval.txt"] = _text(sorted(ids["train"] + ids["val"]))
    for cls in VOC_CLASSES:
        both = sorted(flags["train"][cls] + flags["val"][cls])
        tree[f"{main}{cls}_trainval.txt"] = _text(both)
    return {"VOCtrainval_11-May-2012.tar": pack("VOCtrainval_11-May-2012.tar", tree)}


# ------------------------------------------------------------------------------------ COCO 2014
def coco_instances(images: dict[int, tuple[str, int, int]], annotations: list[tuple[int, int]]) -> dict:
    """An ``instances_*2014.json`` with the 80 categories: ``images`` id -> (file, height, width)."""
    categories = [
        {"supercategory": "thing", "id": cid, "name": name} for cid, name in zip(COCO_IDS, COCO_NAMES)
    ]
    return {
        "info": {"description": "COCO 2014 Dataset (format-exact fake for smoke runs)", "year": 2014},
        "licenses": [{"id": 1, "name": "fake", "url": ""}],
        "images": [
            {"license": 1, "file_name": f, "height": h, "width": w, "id": i}
            for i, (f, h, w) in images.items()
        ],
        "annotations": [
            {
                "segmentation": [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]],
                "area": 8.0,
                "iscrowd": 0,
                "image_id": i,
                "bbox": [0.0, 0.0, 4.0, 4.0],
                "category_id": c,
                "id": k + 1,
            }
            for k, (i, c) in enumerate(annotations)
        ],
        "categories": categories,
    }


def fake_coco2014(seed: int) -> Files:
    rng = rng_for(seed, "coco2014")
    colours = tints(rng, 80)
    files: Files = {}
    annotations: Tree = {}
    image_id = 0
    for split, per in (("train", MULTILABEL_TRAIN_PER_CLASS), ("val", MULTILABEL_EVAL_PER_CLASS)):
        tree: Tree = {}
        images: dict[int, tuple[str, int, int]] = {}
        pairs: list[tuple[int, int]] = []
        for labels in multilabels(rng, 80, per):
            image_id += int(rng.integers(1, 40))
            name = f"COCO_{split}2014_{image_id:012d}.jpg"
            data, h, w = _sized_jpeg(rng, colours[list(labels)].mean(axis=0))
            tree[f"{split}2014/{name}"] = data
            images[image_id] = (name, h, w)
            pairs += [(image_id, COCO_IDS[c]) for c in labels for _ in range(int(rng.integers(1, 3)))]
        files[f"{split}2014.zip"] = pack(f"{split}2014.zip", tree)
        annotations[f"annotations/instances_{split}2014.json"] = json.dumps(
            coco_instances(images, pairs), separators=(",", ":")
        ).encode()
    files["annotations_trainval2014.zip"] = pack("annotations_trainval2014.zip", annotations)
    return files


# ------------------------------------------------------------------------------------- NUS-WIDE
def _nuswide(seed: int) -> tuple[Files, Tree]:
    """The three metadata zips and the user-supplied image tree (``Flickr/<folder>/<file>.jpg``)."""
    rng = rng_for(seed, "nuswide")
    colours = tints(rng, len(NUS_CONCEPTS))
    train = multilabels(rng, len(NUS_CONCEPTS), MULTILABEL_TRAIN_PER_CLASS)
    val = multilabels(rng, len(NUS_CONCEPTS), MULTILABEL_EVAL_PER_CLASS)
    test = multilabels(rng, len(NUS_CONCEPTS), MULTILABEL_EVAL_PER_CLASS)
    # The parser shuffles the test list with RandomState(999) and halves it into val and test: place
    # the label sets so that every concept lands in both halves.
    n = len(val) + len(test)
    order = np.random.RandomState(NUS_SPLIT_SEED).permutation(n).tolist()
    test_list: list[tuple[int, ...]] = [()] * n
    for j, file_index in enumerate(order):
        test_list[file_index] = val[j] if j < n // 2 else test[j - n // 2]
    images: Tree = {}
    meta: Tree = {"ConceptsList/Concepts81.txt": _text(NUS_CONCEPTS)}
    serial = 0
    lists: dict[str, list[str]] = {}
    for part, items in (("Train", train), ("Test", test_list)):
        entries = []
        for labels in items:
            serial += 1
            entry = f"{NUS_CONCEPTS[labels[0]]}\\{serial:04d}_{int(rng.integers(10**8, 10**10))}.jpg"
            entries.append(entry)
            images["Flickr/" + entry.replace("\\", "/")] = _ml_jpeg(rng, colours, labels)
        lists[part] = entries
        meta[f"ImageList/{part}Imagelist.txt"] = _text(entries)
        for c, concept in enumerate(NUS_CONCEPTS):
            meta[f"Groundtruth/TrainTestLabels/Labels_{concept}_{part}.txt"] = _text(
                f"{int(c in labels)} "
                for labels in items  # upstream lines end in a space
            )
    meta["ImageList/Imagelist.txt"] = _text(lists["Train"] + lists["Test"])
    files = {}
    for top in ("Groundtruth", "ConceptsList", "ImageList"):
        part = {p: d for p, d in meta.items() if p.startswith(top + "/")}
        files[f"{top}.zip"] = pack(f"{top}.zip", part)
    return files, images


def fake_nuswide(seed: int) -> Files:
    return _nuswide(seed)[0]


def nuswide_user_tree(seed: int) -> Tree:
    """NUS-WIDE's images (not downloadable upstream): ``{"Flickr/<folder>/<file>.jpg": bytes}``."""
    return _nuswide(seed)[1]


# ---------------------------------------------------------------------------- MOS OOD sets
MOS_FOLDERS = {"inaturalist_ood": "iNaturalist", "sun_ood": "SUN", "places_ood": "Places"}


def fake_mos(name: str, seed: int) -> Files:
    folder = MOS_FOLDERS[name]
    rng = rng_for(seed, name)
    tint = tints(rng, 1)[0]
    keys = sorted(rng.choice(2**62, size=OOD_IMAGES, replace=False).tolist())
    tree = {f"{folder}/images/{k:032x}.jpg": _jpeg(rng, tint) for k in keys}
    return {f"{folder}.tar.gz": pack(f"{folder}.tar.gz", tree)}


#: Catalog name -> builder (seed -> files).
BUILDERS = {
    "food101": fake_food101,
    "flowers102": fake_flowers102,
    "oxford_pets": fake_oxford_pets,
    "dtd": fake_dtd,
    "places365_val": fake_places365_val,
    "voc2012": fake_voc2012,
    "coco2014": fake_coco2014,
    "nuswide": fake_nuswide,
    **{name: (lambda seed, name=name: fake_mos(name, seed)) for name in MOS_FOLDERS},
}
#: Catalog name -> the user-supplied tree of a dataset whose files are not downloadable.
USER_TREES = {"nuswide": nuswide_user_tree}

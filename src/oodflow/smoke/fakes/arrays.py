"""Fakes of the small-image (array-form) datasets: CIFAR-10/100, SVHN, MNIST, Fashion-MNIST,
Tiny-ImageNet, the ODIN OOD folders, 300K Random Images and the published GAN samples.

Each ``fake_<name>(seed)`` returns ``{resource filename: bytes}`` in the upstream packaging
(see the catalog's :mod:`oodflow.data.sources.small` for the layouts the parsers read).
"""

from __future__ import annotations

import gzip

import numpy as np

from oodflow.smoke.fakes.archives import Tree, pack
from oodflow.smoke.fakes.formats import (
    cifar_rows,
    encode_image,
    idx_bytes,
    mat_bytes,
    npy_bytes,
    npz_bytes,
    patterns,
    py2_pickle,
    rng_for,
    tints,
)
from oodflow.smoke.fakes.sizes import (
    EVAL_PER_CLASS,
    GAN_IMAGES,
    OOD_IMAGES,
    TINYIMAGES_300K_IMAGES,
    TRAIN_PER_CLASS,
)

Files = dict[str, bytes]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel "
    "can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur "
    "dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion "
    "lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree "
    "pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea "
    "seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table "
    "tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman "
    "worm".split()
)


def labelled(rng: np.random.Generator, n_classes: int, per_class: int) -> np.ndarray:
    """Labels 0..n_classes-1, each ``per_class`` times, in a seeded order (int64)."""
    return rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), per_class))


def images_for(rng: np.random.Generator, labels: np.ndarray, colours: np.ndarray, side: int) -> np.ndarray:
    """Pattern images (N, side, side, C) tinted by the colour of each label."""
    return patterns(rng, colours[labels], side, side)


# ------------------------------------------------------------------------------------ CIFAR
def fake_cifar10(seed: int) -> Files:
    rng = rng_for(seed, "cifar10")
    colours = tints(rng, 10)
    root = "cifar-10-batches-py/"
    meta = {
        b"num_cases_per_batch": 10,
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_vis": 3072,
    }
    tree: Tree = {root + "batches.meta": py2_pickle(meta), root + "readme.html": b"<html></html>\n"}
    names = [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        per = EVAL_PER_CLASS if name == "test_batch" else 1  # five batches: TRAIN_PER_CLASS per class
        y = labelled(rng, 10, per)
        x = images_for(rng, y, colours, 32)
        label = "testing batch 1 of 1" if name == "test_batch" else f"training batch {i + 1} of 5"
        batch = {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in y],
            b"data": cifar_rows(x),
            b"filenames": [f"fake_{i}_{j:05d}.png".encode() for j in range(len(y))],
        }
        tree[root + name] = py2_pickle(batch)
    return {"cifar-10-python.tar.gz": pack("cifar-10-python.tar.gz", tree)}


def fake_cifar100(seed: int) -> Files:
    rng = rng_for(seed, "cifar100")
    colours = tints(rng, 100)
    root = "cifar-100-python/"
    coarse = [f"superclass_{i:02d}".encode() for i in range(20)]
    meta = {b"fine_label_names": [c.encode() for c in CIFAR100_CLASSES], b"coarse_label_names": coarse}
    tree: Tree = {root + "meta": py2_pickle(meta)}
    for split, per in (("train", TRAIN_PER_CLASS), ("test", EVAL_PER_CLASS)):
        y = labelled(rng, 100, per)
        x = images_for(rng, y, colours, 32)
        batch = {
            b"filenames": [f"fake_{split}_{j:05d}.png".encode() for j in range(len(y))],
            b"batch_label": f"{split}ing batch 1 of 1".encode(),
            b"fine_labels": [int(v) for v in y],
            b"coarse_labels": [int(v) // 5 for v in y],
            b"data": cifar_rows(x),
        }
        tree[root + split] = py2_pickle(batch)
    return {"cifar-100-python.tar.gz": pack("cifar-100-python.tar.gz", tree)}


# ------------------------------------------------------------------------------------- SVHN
def _svhn_mat(rng: np.random.Generator, colours: np.ndarray, per_class: int) -> bytes:
    digits = labelled(rng, 10, per_class)
    x = images_for(rng, digits, colours, 32)
    labels = np.where(digits == 0, 10, digits).astype(np.uint8)  # upstream: label 10 is the digit 0
    return mat_bytes({"X": np.ascontiguousarray(x.transpose(1, 2, 3, 0)), "y": labels.reshape(-1, 1)})


def fake_svhn(seed: int) -> Files:
    """``test_selected`` needs ``parser_args: {selected_per_class: EVAL_PER_CLASS}`` (or fewer)."""
    rng = rng_for(seed, "svhn")
    colours = tints(rng, 10)
    return {
        "train_32x32.mat": _svhn_mat(rng, colours, TRAIN_PER_CLASS),
        "test_32x32.mat": _svhn_mat(rng, colours, EVAL_PER_CLASS),
    }


def fake_svhn_extra(seed: int) -> Files:
    rng = rng_for(seed, "svhn_extra")
    return {"extra_32x32.mat": _svhn_mat(rng, tints(rng, 10), TRAIN_PER_CLASS)}


# ------------------------------------------------------------------------------------ MNIST
def _idx_set(name: str, seed: int) -> Files:
    rng = rng_for(seed, name)
    colours = tints(rng, 10, channels=1)
    files = {}
    for stem, per in (("train", TRAIN_PER_CLASS), ("t10k", EVAL_PER_CLASS)):
        y = labelled(rng, 10, per)
        x = images_for(rng, y, colours, 28)[..., 0]
        for kind, arr in (("images-idx3", x), ("labels-idx1", y.astype(np.uint8))):
            files[f"{stem}-{kind}-ubyte.gz"] = gzip.compress(idx_bytes(arr), mtime=0)
    return files


def fake_mnist(seed: int) -> Files:
    return _idx_set("mnist", seed)


def fake_fashion_mnist(seed: int) -> Files:
    return _idx_set("fashion_mnist", seed)


# ----------------------------------------------------------------------------- Tiny-ImageNet
def fake_tinyimagenet(seed: int) -> Files:
    """200 wnids (listed unsorted, as upstream), ``TRAIN_PER_CLASS`` train and ``EVAL_PER_CLASS`` val
    JPEGs per class, a few unlabelled test JPEGs; one grey train JPEG, as upstream has."""
    rng = rng_for(seed, "tinyimagenet")
    wnids = [f"n{v:08d}" for v in rng.choice(np.arange(1_000_000, 9_999_999), size=200, replace=False)]
    classes = sorted(wnids)
    colours = tints(rng, 200)
    root = "tiny-imagenet-200/"
    tree: Tree = {
        root + "wnids.txt": "".join(f"{w}\n" for w in wnids).encode(),
        root + "words.txt": "".join(f"{w}\tfake class {i}\n" for i, w in enumerate(classes)).encode(),
    }
    y = np.repeat(np.arange(200), TRAIN_PER_CLASS)
    x = images_for(rng, y, colours, 64)
    boxes: dict[str, list[str]] = {w: [] for w in classes}
    for k, (img, label) in enumerate(zip(x, y)):
        wnid = classes[label]
        name = f"{wnid}_{k % TRAIN_PER_CLASS}.JPEG"
        tree[f"{root}train/{wnid}/images/{name}"] = encode_image(img[..., 0] if k == 1 else img)
        boxes[wnid].append(f"{name}\t0\t0\t63\t63\n")
    for wnid, lines in boxes.items():
        tree[f"{root}train/{wnid}/{wnid}_boxes.txt"] = "".join(lines).encode()
    vy = labelled(rng, 200, EVAL_PER_CLASS)
    annotations = []
    for k, (img, label) in enumerate(zip(images_for(rng, vy, colours, 64), vy)):
        tree[f"{root}val/images/val_{k}.JPEG"] = encode_image(img)
        annotations.append(f"val_{k}.JPEG\t{classes[label]}\t0\t0\t63\t63\n")
    tree[root + "val/val_annotations.txt"] = "".join(annotations).encode()
    for k, img in enumerate(patterns(rng, tints(rng, 4), 64, 64)):
        tree[f"{root}test/images/test_{k}.JPEG"] = encode_image(img)
    return {"tiny-imagenet-200.zip": pack("tiny-imagenet-200.zip", tree)}


# ---------------------------------------------------------------------------- ODIN folders
#: ODIN set -> (archive, image folder, file suffix, image side) as upstream ships them.
ODIN_LAYOUTS = {
    "lsun_crop": ("LSUN.tar.gz", "LSUN/test", ".jpg", 36),
    "lsun_resize": ("LSUN_resize.tar.gz", "LSUN_resize/LSUN_resize", ".jpg", 32),
    "tinyimagenet_crop": ("Imagenet.tar.gz", "Imagenet/test", ".jpg", 36),
    "tinyimagenet_resize": ("Imagenet_resize.tar.gz", "Imagenet_resize/Imagenet_resize", ".jpg", 32),
    "isun": ("iSUN.tar.gz", "iSUN/iSUN_patches", ".jpeg", 32),
}


def fake_odin(name: str, seed: int) -> Files:
    archive, folder, suffix, side = ODIN_LAYOUTS[name]
    rng = rng_for(seed, name)
    x = patterns(rng, np.repeat(tints(rng, 1), OOD_IMAGES, axis=0), side, side)
    tree = {f"{folder}/{k}{suffix}": encode_image(img) for k, img in enumerate(x)}
    return {archive: pack(archive, tree)}


# --------------------------------------------------------------------------- numpy outliers
def fake_tinyimages_300k(seed: int) -> Files:
    rng = rng_for(seed, "tinyimages_300k")
    x = patterns(rng, tints(rng, TINYIMAGES_300K_IMAGES), 32, 32)
    return {"300K_random_images.npy": npy_bytes(x)}


def fake_gan(sigma: str, seed: int) -> Files:
    """``samples-<sigma>.npz``: ``x`` uint8 (N, 3, 32, 32) (channels first, as published), ``y`` the
    GAN's int64 class labels (0..99)."""
    rng = rng_for(seed, f"gan-{sigma}")
    y = rng.integers(0, 100, size=GAN_IMAGES).astype(np.int64)
    x = images_for(rng, y, tints(rng, 100), 32)
    return {f"samples-{sigma}.npz": npz_bytes(x=np.ascontiguousarray(x.transpose(0, 3, 1, 2)), y=y)}


#: Catalog name -> builder (seed -> files) of the fixed array-form entries (GANs: :func:`fake_gan`).
BUILDERS = {
    "cifar10": fake_cifar10,
    "cifar100": fake_cifar100,
    "svhn": fake_svhn,
    "svhn_extra": fake_svhn_extra,
    "mnist": fake_mnist,
    "fashion_mnist": fake_fashion_mnist,
    "tinyimagenet": fake_tinyimagenet,
    **{name: (lambda seed, name=name: fake_odin(name, seed)) for name in ODIN_LAYOUTS},
    "tinyimages_300k": fake_tinyimages_300k,
}

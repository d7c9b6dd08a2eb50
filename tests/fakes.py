"""Tiny fake dataset files in the exact upstream layouts (a few KB each), for parser and download tests.

Hand-made cases with hand-written expectations; the file-format encoders come from the library's
smoke fakes (:mod:`oodflow.smoke.fakes.formats`), whose full-size fakes of every catalog dataset
are tested in ``test_smoke_fakes.py``.

Every ``write_*`` function writes into ``raw_dir`` what the upstream download leaves there once its
archives are unpacked (top-level folder kept), and returns what the parser should produce:
``{"splits": {split: (x, y)}, "classes": [...]}`` with ``x`` uint8 ``(N, H, W, C)`` and ``y`` int64.
The expected arrays are computed here independently of the parsers (JPEGs are decoded back with PIL,
since JPEG is lossy).
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from oodflow.smoke.fakes import formats


def py2_pickle(obj) -> bytes:
    """A Python 2 protocol-2 pickle of ``obj`` (the library's encoder)."""
    return formats.py2_pickle(obj)


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(name.encode()))


def _cifar_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR's row format (N, 3072: R plane, G plane, B plane) and the same images as (N, 32, 32, 3)."""
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    return formats.cifar_rows(x), x


# ------------------------------------------------------------------------------------------ CIFAR
def write_cifar10(raw_dir: Path, per_batch: int = 1, n_test: int = 2) -> dict:
    root = Path(raw_dir) / "cifar-10-batches-py"
    root.mkdir(parents=True)
    rng = _rng("cifar10")
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in classes], b"num_vis": 3072}
    (root / "batches.meta").write_bytes(py2_pickle(meta))
    xs, ys = [], []
    for i, name in enumerate([f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]):
        n = n_test if name == "test_batch" else per_batch
        rows, x = _cifar_rows(rng, n)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {
            b"batch_label": f"batch {i + 1} of 5".encode(),
            b"labels": labels,
            b"data": rows,
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(n)],
        }
        (root / name).write_bytes(py2_pickle(batch))
        xs.append(x)
        ys.append(np.asarray(labels, dtype=np.int64))
    splits = {
        "train": (np.concatenate(xs[:5]), np.concatenate(ys[:5])),
        "test": (xs[5], ys[5]),
    }
    (root / "readme.html").write_text("<html></html>")
    return {"splits": splits, "classes": classes}


def write_cifar100(raw_dir: Path, n_train: int = 2, n_test: int = 1) -> dict:
    root = Path(raw_dir) / "cifar-100-python"
    root.mkdir(parents=True)
    rng = _rng("cifar100")
    classes = [f"class_{i:02d}" for i in range(100)]
    meta = {b"fine_label_names": [c.encode() for c in classes], b"coarse_label_names": [b"c"] * 20}
    (root / "meta").write_bytes(py2_pickle(meta))
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rows, x = _cifar_rows(rng, n)
        fine = [int(v) for v in rng.integers(0, 100, n)]
        batch = {
            b"filenames": [b"f.png"] * n,
            b"batch_label": split.encode(),
            b"fine_labels": fine,
            b"coarse_labels": [v // 5 for v in fine],
            b"data": rows,
        }
        (root / split).write_bytes(py2_pickle(batch))
        splits[split] = (x, np.asarray(fine, dtype=np.int64))
    return {"splits": splits, "classes": classes}


# ------------------------------------------------------------------------------------------- SVHN
#: Original SVHN labels (1..10, 10 = digit 0) of the fake test file: every label at least once,
#: some repeated, so that "the first of each label" is a real choice.
SVHN_TEST_LABELS = (10, 1, 1, 2, 3, 10, 4, 5, 6, 7, 8, 9, 2)


def _write_svhn_mat(path: Path, labels: tuple[int, ...], rng: np.random.Generator) -> tuple:
    from scipy.io import savemat

    n = len(labels)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    savemat(
        path,
        {"X": x.transpose(1, 2, 3, 0), "y": np.asarray(labels, dtype=np.uint8).reshape(n, 1)},
        format="5",
    )
    return x, np.asarray([v % 10 for v in labels], dtype=np.int64)


def write_svhn(raw_dir: Path) -> dict:
    """``train/test_32x32.mat``; the expected ``test_selected`` is for one image per label."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = _rng("svhn")
    splits = {
        "train": _write_svhn_mat(raw_dir / "train_32x32.mat", (3, 10), rng),
        "test": _write_svhn_mat(raw_dir / "test_32x32.mat", SVHN_TEST_LABELS, rng),
    }
    keep = [SVHN_TEST_LABELS.index(label) for label in range(1, 11)]  # labels 1..10, first of each
    x, y = splits["test"]
    splits["test_selected"] = (x[keep], y[keep])
    return {"splits": splits, "classes": [str(d) for d in range(10)]}


def write_svhn_extra(raw_dir: Path) -> dict:
    """``extra_32x32.mat`` (the separate ``svhn_extra`` dataset)."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    splits = {"extra": _write_svhn_mat(raw_dir / "extra_32x32.mat", (7, 10), _rng("svhn_extra"))}
    return {"splits": splits, "classes": [str(d) for d in range(10)]}


# ------------------------------------------------------------------------------------ MNIST (idx)
idx_bytes = formats.idx_bytes


def write_mnist(
    raw_dir: Path, n_train: int = 3, n_test: int = 2, gz: bool = True, name: str = "mnist"
) -> dict:
    """``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (MNIST and Fashion-MNIST alike)."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = _rng(name)
    splits = {}
    for split, stem, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            data = idx_bytes(arr)
            filename = f"{stem}-{kind}-ubyte"
            if gz:
                (raw_dir / f"{filename}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (raw_dir / filename).write_bytes(data)
        splits[split] = (x[..., None], y.astype(np.int64))
    return {"splits": splits}


# ---------------------------------------------------------------------------------- image folders
def _write_image(path: Path, img: np.ndarray) -> np.ndarray:
    """Save an image (format from the suffix) and return it decoded back as RGB uint8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(img).save(path, format=fmt)
    with Image.open(path) as back:
        return np.asarray(back.convert("RGB"))


#: Unsorted on purpose (the parser sorts them), as in the real ``wnids.txt``.
TINY_WNIDS = ("n09999999", "n01443537", "n02124075")


def write_tinyimagenet(raw_dir: Path, per_class: int = 2) -> dict:
    """``tiny-imagenet-200/`` as unpacked: wnids.txt, words.txt, train/<wnid>/images/*.JPEG with
    <wnid>_boxes.txt, val/images/*.JPEG with val/val_annotations.txt, test/images/*.JPEG."""
    root = Path(raw_dir) / "tiny-imagenet-200"
    rng = _rng("tinyimagenet")
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in TINY_WNIDS))
    (root / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in TINY_WNIDS))
    classes = sorted(TINY_WNIDS)
    xs, ys = [], []
    for label, wnid in enumerate(classes):
        boxes = []
        for i in range(per_class):
            shape = (64, 64) if (label, i) == (0, 1) else (64, 64, 3)  # one grey JPEG, as upstream has
            img = rng.integers(0, 256, size=shape, dtype=np.uint8)
            xs.append(_write_image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", img))
            ys.append(label)
            boxes.append(f"{wnid}_{i}.JPEG\t0\t0\t63\t63\n")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    val_wnids = (TINY_WNIDS[2], TINY_WNIDS[0], TINY_WNIDS[2])
    vx, vy, lines = [], [], []
    for i, wnid in enumerate(val_wnids):
        img = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        vx.append(_write_image(root / "val" / "images" / f"val_{i}.JPEG", img))
        vy.append(classes.index(wnid))
        lines.append(f"val_{i}.JPEG\t{wnid}\t1\t2\t40\t50\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    _write_image(root / "test" / "images" / "test_0.JPEG", np.zeros((64, 64, 3), np.uint8))
    splits = {
        "train": (np.stack(xs), np.asarray(ys, dtype=np.int64)),
        "val": (np.stack(vx), np.asarray(vy, dtype=np.int64)),
    }
    return {"splits": splits, "classes": classes}


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip ``folder`` keeping its name as the top-level entry (as ``tiny-imagenet-200.zip`` does)."""
    folder = Path(folder)
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return Path(zip_path)


def write_tinyimagenet_zip(zip_path: Path, work_dir: Path) -> dict:
    """``tiny-imagenet-200.zip`` built from :func:`write_tinyimagenet` (for download/unpack tests)."""
    expected = write_tinyimagenet(work_dir)
    zip_folder(Path(work_dir) / "tiny-imagenet-200", zip_path)
    return expected


#: ODIN set -> (image folder, file suffix, image side) as in the upstream archives.
ODIN_LAYOUTS = {
    "lsun_crop": ("LSUN/test", ".jpg", 36),
    "lsun_resize": ("LSUN_resize/LSUN_resize", ".jpg", 32),
    "tinyimagenet_crop": ("Imagenet/test", ".jpg", 36),
    "tinyimagenet_resize": ("Imagenet_resize/Imagenet_resize", ".jpg", 32),
    "isun": ("iSUN/iSUN_patches", ".jpeg", 32),
}


def write_odin(raw_dir: Path, name: str, n: int = 4, side: int | None = None) -> dict:
    """An ODIN image folder; names ``0, 1, 10, ...`` so that name order differs from numeric order.
    Larger-than-32 images are expected centre-cropped to 32x32."""
    folder, suffix, default_side = ODIN_LAYOUTS[name]
    side = side or default_side
    rng = _rng(name)
    names = sorted(f"{i}{suffix}" for i in (0, 1, 10, 2, 3, 4)[:n])
    xs = []
    for filename in names:
        img = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        back = _write_image(Path(raw_dir) / folder / filename, img)
        off = (side - 32) // 2
        xs.append(back[off : off + 32, off : off + 32])
    x = np.stack(xs)
    return {"splits": {"test": (x, np.full(len(x), -1, dtype=np.int64))}, "classes": []}


# --------------------------------------------------------------------------------- numpy outliers
def write_300k(raw_dir: Path, n: int = 2) -> dict:
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    x = _rng("300k").integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    np.save(raw_dir / "300K_random_images.npy", x)
    return {"splits": {"train": (x, np.full(n, -1, dtype=np.int64))}, "classes": []}


def write_gan(
    raw_dir: Path, sigma: str = "2.0", n: int = 2, channels_first: bool = True, dtype=np.uint8
) -> dict:
    """``samples-{sigma}.npz`` with ``x`` (N, 3, 32, 32) 0..255 and ``y`` (the GAN's class labels)."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    x = _rng(f"gan{sigma}").integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    stored = x.transpose(0, 3, 1, 2) if channels_first else x
    np.savez(raw_dir / f"samples-{sigma}.npz", x=stored.astype(dtype), y=np.arange(n, dtype=np.int64))
    return {"splits": {"train": (x, np.full(n, -1, dtype=np.int64))}, "classes": []}

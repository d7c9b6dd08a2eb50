"""Byte-exact, deterministic encoders of the upstream file formats the fakes are made of.

Python 2 data pickles (the CIFAR batches), MATLAB v5 files (SVHN, Flowers102), unsigned-byte idx files
(MNIST), ``.npy``/``.npz`` (300K Random Images, the published GAN samples) and JPEG/PNG images. Every
encoder returns ``bytes`` and is deterministic: the MATLAB header's creation date and the ``.npz`` zip
timestamps are fixed. Images are seeded patterns (:func:`patterns`): a coarse random grid, a tint per
class and fine noise, so that images differ from one another and a little from class to class.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib

import numpy as np

#: The zip timestamp of every fake archive member (zip cannot store dates before 1980).
ZIP_DATE = (2010, 1, 1, 0, 0, 0)
_RECONSTRUCT = np.zeros(0).__reduce__()[0]


def rng_for(seed: int, *key: str) -> np.random.Generator:
    """A generator determined by ``seed`` and the strings ``key`` (e.g. the dataset and the split)."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode("utf-8")) for k in key)])


# ------------------------------------------------------------------------------------ images
def tints(rng: np.random.Generator, n_classes: int, channels: int = 3) -> np.ndarray:
    """One colour per class, float32 ``(n_classes, channels)`` in 0..255."""
    return rng.integers(0, 256, size=(max(n_classes, 1), channels)).astype(np.float32)


def patterns(rng: np.random.Generator, tint: np.ndarray, height: int, width: int) -> np.ndarray:
    """Images ``uint8 (N, height, width, C)``, one per row of ``tint`` ``(N, C)``: 45% a coarse 4x4
    random grid (nearest-upsampled), 35% the tint, 20% pixel noise."""
    tint = np.asarray(tint, dtype=np.float32)
    n, c = tint.shape
    coarse = rng.integers(0, 256, size=(n, 4, 4, c)).astype(np.float32)
    rows, cols = (np.arange(height) * 4) // height, (np.arange(width) * 4) // width
    up = coarse[:, rows][:, :, cols]
    fine = rng.integers(0, 256, size=(n, height, width, c)).astype(np.float32)
    img = 0.45 * up + 0.35 * tint[:, None, None, :] + 0.20 * fine
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def image(rng: np.random.Generator, tint: np.ndarray, height: int, width: int) -> np.ndarray:
    """One pattern image ``uint8 (height, width, C)`` tinted ``tint`` ``(C,)``."""
    return patterns(rng, np.asarray(tint)[None], height, width)[0]


def encode_image(img: np.ndarray, fmt: str = "JPEG") -> bytes:
    """``img`` (H, W, 3) or (H, W) uint8 as JPEG (quality 90) or PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    pil = Image.fromarray(img if img.ndim == 2 or img.shape[2] == 3 else img[..., 0])
    if fmt == "JPEG":
        pil.save(buf, format="JPEG", quality=90)
    else:
        pil.save(buf, format=fmt)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes back as RGB uint8 (H, W, 3) (JPEG is lossy: what a parser will read)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# --------------------------------------------------------------------------- Python 2 pickles
class _Py2Pickler(pickle._Pickler):
    """Writes protocol-2 pickles as Python 2's cPickle did for the CIFAR batches: every string
    (``bytes`` and ASCII ``str``, e.g. numpy's dtype codes) as a Python 2 ``str`` opcode
    (``SHORT_BINSTRING``/``BINSTRING``), numpy's array rebuilder under its old module name
    ``numpy.core.multiarray``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("ascii") if isinstance(obj, str) else obj
        n = len(data)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str

    def save_global(self, obj, name=None):
        if obj is _RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    """``obj`` (dicts, lists, bytes, ints, numpy arrays) as a Python 2 protocol-2 pickle."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_rows(x: np.ndarray) -> np.ndarray:
    """Images (N, 32, 32, 3) as CIFAR's rows (N, 3072): the R plane, then G, then B."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))


# ------------------------------------------------------------------------------- MATLAB v5
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: oodflow smoke fakes".ljust(116)


def mat_bytes(variables: dict[str, np.ndarray]) -> bytes:
    """A MATLAB v5 file (as scipy writes it) with a fixed header text instead of the creation date."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables, format="5")
    data = buf.getvalue()
    return _MAT_HEADER + data[len(_MAT_HEADER) :]


# ------------------------------------------------------------------------------------ idx
def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte idx file: 0x0000, 0x08, ndim, big-endian int32 sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


# ---------------------------------------------------------------------------------- numpy
def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as a ``.npy`` file (no pickle)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An ``.npz`` as :func:`numpy.savez` writes it (stored ``<name>.npy`` members), fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.external_attr = 0o100644 << 16
            zf.writestr(info, npy_bytes(array))
    return buf.getvalue()

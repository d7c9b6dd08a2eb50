"""Atomic, safe file I/O: nothing half-written, nothing untrusted unpickled.

Every writer goes through :func:`atomic_path`: the content is written to a temporary file in the
target's directory and moved into place with :func:`os.replace` only once it is complete, so a crash
or a failed job never leaves a truncated file at the output path. Readers validate what they read and
raise :class:`FormatError` naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class FormatError(ValueError):
    """A file exists but does not hold what it should."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds.

    The temporary file is ``.<name>.<random>.part`` in the same folder (a rename is atomic only within
    one file system). A SIGKILL skips the ``finally`` that removes it, so every write first sweeps
    the stale ``.<name>.*.part`` of earlier, killed writes of the same file: the job that owns a file
    cleans up after its killed predecessor, and a rerun leaves the folder as an uninterrupted run
    would (DVC ignores ``*.part``, see ``.dvcignore``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (byte-stable for equal content)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FormatError(f"{path}: not valid JSON ({err})") from None


class Streamed:
    """An array written chunk by chunk (:func:`save_npz`): its ``shape`` and ``dtype``, and an
    iterable of chunks ``(n_i, *shape[1:])`` whose ``n_i`` add up to ``shape[0]``."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, chunks: Iterable[np.ndarray]):
        self.shape, self.dtype, self.chunks = tuple(int(s) for s in shape), np.dtype(dtype), chunks


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header ``np.lib.format.write_array`` writes for a C-ordered array."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    try:
        np.lib.format.write_array_header_1_0(buf, header)
    except ValueError:  # header too long for format 1.0 (as write_array falls back)
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, header)
    return buf.getvalue()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray | Streamed) -> None:
    """Save arrays to an uncompressed ``.npz`` atomically, with byte-stable content.

    ``np.savez`` stamps the current time into the zip members, so two runs with equal arrays would
    differ in bytes; members are written here with a fixed timestamp instead. Members are stored
    (not compressed), so :func:`load_npz` can memory-map them. A :class:`Streamed` value is written
    chunk by chunk as its chunks arrive (a set larger than memory), byte-identical to the whole
    array: peak memory is one chunk.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            value = arrays[key]
            if isinstance(value, Streamed):
                shape, dtype, chunks = value.shape, value.dtype, value.chunks
            else:
                arr = np.ascontiguousarray(value)
                shape, dtype, chunks = arr.shape, arr.dtype, [arr]
            if dtype.hasobject:
                raise TypeError(f"{path}: array '{key}' has dtype object, which cannot be saved safely")
            header = _npy_header(shape, dtype)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.file_size = len(header) + math.prod(shape) * dtype.itemsize  # decides zip64 upfront
            rows = 0
            with zf.open(info, "w") as dest:
                dest.write(header)
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk)
                    if chunk.dtype != dtype or chunk.shape[1:] != shape[1:]:
                        raise ValueError(
                            f"{path}: chunk of '{key}' is {chunk.dtype} {chunk.shape}, expected "
                            f"{dtype} (n, {', '.join(map(str, shape[1:]))})"
                        )
                    dest.write(memoryview(chunk.reshape(-1)).cast("B") if chunk.size else b"")
                    rows += len(chunk) if chunk.ndim else 1
            if rows != (shape[0] if shape else 1):
                raise ValueError(f"{path}: '{key}' got {rows} rows in its chunks, expected {shape[0]}")


class NpyMember:
    """An uncompressed ``.npy`` member of an ``.npz``: where its data lie in the file, read on demand.

    :meth:`take` and :meth:`block` read rows with ``os.pread`` into fresh arrays, so a process that
    walks through a set larger than memory holds only the rows it asked for (the file's pages stay
    in the page cache, not in the process); :meth:`memmap` maps the whole member read-only.
    """

    def __init__(self, path: Path, key: str, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.key, self.offset, self.shape, self.dtype = path, key, offset, shape, dtype
        self.row_bytes = math.prod(shape[1:]) * dtype.itemsize if shape else dtype.itemsize
        self._fd: int | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:  # a worker process opens its own descriptor
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _read(self, out: np.ndarray, row: int) -> None:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        view = memoryview(out.reshape(-1)).cast("B")
        done = 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], self.offset + row * self.row_bytes + done)
            if got == 0:
                raise FormatError(f"{self.path}: '{self.key}' ends early (truncated file)")
            done += got

    def block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (clipped to the array), one read."""
        start, stop = max(0, min(start, len(self))), max(0, min(stop, len(self)))
        out = np.empty((max(0, stop - start), *self.shape[1:]), self.dtype)
        if out.size:
            self._read(out, start)
        return out

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``rows`` in their order (one read per run of consecutive rows)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(
                f"{self.path}: '{self.key}' has {len(self)} rows, asked for {rows.min()}..{rows.max()}"
            )
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        i = 0
        while i < len(rows):
            j = i + 1
            while j < len(rows) and rows[j] == rows[j - 1] + 1:
                j += 1
            self._read(out[i:j], int(rows[i]))
            i = j
        return out

    def memmap(self) -> np.ndarray:
        """The whole member as a read-only memory map (an empty array for zero rows)."""
        if math.prod(self.shape) == 0:
            out = np.empty(self.shape, self.dtype)
            out.flags.writeable = False
            return out
        mapped = np.memmap(
            self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape or (1,)
        )
        return mapped if self.shape else mapped.reshape(())


def npz_members(path: str | os.PathLike) -> dict[str, NpyMember]:
    """The arrays of an uncompressed ``.npz`` (as :func:`save_npz` writes) as :class:`NpyMember`,
    nothing loaded. Refuses object arrays (no unpickling), compressed or Fortran-ordered members and
    members whose data run past their zip entry, with a :class:`FormatError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    members = {}
    try:
        with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                key = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise FormatError(f"{path}: array '{key}' is compressed and cannot be memory-mapped")
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) != 30 or local[:4] != b"PK\x03\x04":
                    raise FormatError(f"{path}: bad zip entry for array '{key}'")
                start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                start += int.from_bytes(local[28:30], "little")
                fh.seek(start)
                version = np.lib.format.read_magic(fh)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                    version, np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fh)
                if dtype.hasobject:
                    raise FormatError(f"{path}: refuses to load safely (array '{key}' holds objects)")
                if fortran and len(shape) > 1:
                    raise FormatError(f"{path}: array '{key}' is Fortran-ordered")
                offset = fh.tell()
                if offset + math.prod(shape) * dtype.itemsize > start + info.file_size:
                    raise FormatError(f"{path}: array '{key}' is larger than its zip entry")
                members[key] = NpyMember(path, key, offset, tuple(shape), dtype)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        if isinstance(err, FormatError):
            raise
        raise FormatError(f"{path}: not a readable .npz file ({err})") from None
    return members


def _check_required(path: Path, arrays: Mapping[str, Any], required: Mapping[str, int | None] | None):
    for key, ndim in (required or {}).items():
        if key not in arrays:
            raise FormatError(f"{path}: missing array '{key}' (has: {', '.join(sorted(arrays))})")
        if ndim is not None and len(arrays[key].shape) != ndim:
            raise FormatError(
                f"{path}: array '{key}' has {len(arrays[key].shape)} dimensions, expected {ndim}"
            )


def load_npz(
    path: str | os.PathLike, required: Mapping[str, int | None] | None = None, mmap: bool = False
) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without unpickling anything.

    Args:
        path: the file.
        required: optional ``{key: ndim}`` (``ndim`` may be ``None``) that must be present.
        mmap: return read-only memory maps of the (uncompressed) members instead of loading them
            (:func:`npz_members`).

    Raises:
        FileNotFoundError: if the file is missing.
        FormatError: if it is not an npz, holds pickled objects, or lacks a required key or rank.
    """
    path = Path(path)
    if mmap:
        arrays = {k: m.memmap() for k, m in npz_members(path).items()}
        _check_required(path, arrays, required)
        return arrays
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:  # object arrays refuse to load without pickle
        raise FormatError(f"{path}: refuses to load safely ({err})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise FormatError(f"{path}: not a readable .npz file ({err})") from None
    _check_required(path, arrays, required)
    return arrays


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()

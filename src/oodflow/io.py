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
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
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


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save arrays to an uncompressed ``.npz`` atomically, with byte-stable content.

    ``np.savez`` stamps the current time into the zip members, so two runs with equal arrays would
    differ in bytes; members are written here with a fixed timestamp instead.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            arr = np.ascontiguousarray(arrays[key])
            if arr.dtype == object:
                raise TypeError(f"{path}: array '{key}' has dtype object, which cannot be saved safely")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, member.getvalue())
    write_bytes(path, buf.getvalue())


def load_npz(
    path: str | os.PathLike, required: Mapping[str, int | None] | None = None
) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without unpickling anything.

    Args:
        path: the file.
        required: optional ``{key: ndim}`` (``ndim`` may be ``None``) that must be present.

    Raises:
        FileNotFoundError: if the file is missing.
        FormatError: if it is not an npz, holds pickled objects, or lacks a required key or rank.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as err:  # object arrays refuse to load without pickle
        raise FormatError(f"{path}: refuses to load safely ({err})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise FormatError(f"{path}: not a readable .npz file ({err})") from None
    for key, ndim in (required or {}).items():
        if key not in arrays:
            raise FormatError(f"{path}: missing array '{key}' (has: {', '.join(sorted(arrays))})")
        if ndim is not None and arrays[key].ndim != ndim:
            raise FormatError(f"{path}: array '{key}' has {arrays[key].ndim} dimensions, expected {ndim}")
    return arrays


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()

"""Deterministic packing of an in-memory file tree into the upstream archive types.

A tree is ``{posix path: bytes}``. :func:`pack` chooses the container from the file name as upstream
ships it (``.tar``, ``.tar.gz``/``.tgz``, ``.zip``); parent folders get their own entries (as ``tar
-c``/``zip -r`` write them); entries are sorted; every timestamp, owner and mode is fixed and the gzip
header carries mtime 0 and no file name, so equal trees give equal bytes.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

from oodflow.smoke.fakes.formats import ZIP_DATE

Tree = dict[str, bytes]
#: The mtime of every tar member (2010-01-01 UTC).
TAR_MTIME = 1262304000


def _with_folders(tree: Tree) -> list[tuple[str, bytes | None]]:
    """The entries of ``tree`` plus one ``(folder, None)`` per parent folder, sorted by path."""
    folders = {"/".join(p.split("/")[:i]) for p in tree for i in range(1, p.count("/") + 1)}
    clash = folders & set(tree)
    if clash:
        raise ValueError(f"paths used both as a file and a folder: {sorted(clash)[:3]}")
    entries: list[tuple[str, bytes | None]] = [(f, None) for f in folders] + list(tree.items())
    return sorted(entries, key=lambda e: e[0])


def tar_bytes(tree: Tree, gz: bool = False) -> bytes:
    """A (gzipped) tar of ``tree`` in GNU format."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for path, data in _with_folders(tree):
            info = tarfile.TarInfo(path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = TAR_MTIME, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    if not gz:
        return raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gzf:
        gzf.write(raw.getvalue())
    return out.getvalue()


def zip_bytes(tree: Tree) -> bytes:
    """A zip of ``tree`` (files deflated, folders as ``name/`` entries)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in _with_folders(tree):
            if data is None:
                info = zipfile.ZipInfo(f"{path}/", date_time=ZIP_DATE)
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=6)
    return buf.getvalue()


def pack(filename: str, tree: Tree) -> bytes:
    """``tree`` packed as the archive type ``filename`` names."""
    name = filename.lower()
    if name.endswith(".zip"):
        return zip_bytes(tree)
    if name.endswith((".tar.gz", ".tgz")):
        return tar_bytes(tree, gz=True)
    if name.endswith(".tar"):
        return tar_bytes(tree)
    raise ValueError(f"{filename}: not a .tar, .tar.gz, .tgz or .zip name")

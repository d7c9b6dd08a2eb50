"""Safe, atomic unpacking of downloaded archives (tar, tar.gz/bz2/xz, zip).

Archives come from the internet, so :func:`extract` treats them as hostile: before anything is
written it refuses members with absolute paths or ``..`` components, links pointing outside the
destination, members reached through a link (zip: symbolic-link entries at all, and entries below
a file entry), and device or fifo files, raising
:class:`UnsafeArchiveError` naming the archive and the member. Tar archives are then unpacked with
tarfile's ``"data"`` filter as a second line of defence (Python 3.11.4+).

Unpacking happens in a temporary sibling directory that is renamed onto the destination only once
complete, together with a ``.extracted`` marker holding the archive's sha256: a failure leaves
nothing at the destination, and extracting the same archive again is skipped.

:func:`check_complete` reads a downloaded file through as the format its name says (tar and
compressed tar, zip and the zip-based ``.npz``/``.pt``/``.pth``, gzip, ``.npy``) and raises
:class:`~oodflow.io.FormatError` if it is truncated or malformed: :mod:`oodflow.download` runs it
before it pins the sha256 of a file without a published checksum.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from oodflow.io import FormatError, sha256_file

#: Completion marker inside an extracted directory: "<archive sha256>  <archive name>".
MARKER = ".extracted"

#: File name endings recognised by :func:`is_archive` (case-insensitive).
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".zip")

_DRIVE = re.compile(r"^[A-Za-z]:")

#: Name endings :func:`check_complete` reads through, and how: tar (by compression), zip, gzip, npy.
_TAR_OPENERS = {
    ".tar": open,
    ".tar.gz": gzip.open,
    ".tgz": gzip.open,
    ".tar.bz2": bz2.open,
    ".tbz2": bz2.open,
    ".tbz": bz2.open,
    ".tar.xz": lzma.open,
    ".txz": lzma.open,
}
_ZIP_SUFFIXES = (".zip", ".npz", ".pt", ".pth")
_CHUNK = 1 << 20


class UnsafeArchiveError(ValueError):
    """An archive holds a member that could write outside the destination (or is a special file)."""

    def __init__(self, archive: str | os.PathLike, member: str, reason: str) -> None:
        self.archive = Path(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"{archive}: refusing to extract unsafe member '{member}': {reason}")


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like an archive :func:`extract` unpacks.

    Judged by the name only (see :data:`ARCHIVE_SUFFIXES`), so that e.g. an ``.npz`` (a zip) or a
    gzipped single file (``.gz``) is not mistaken for an archive; :func:`extract` then checks the
    content.
    """
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack ``archive`` (tar, compressed tar or zip, detected by content) into ``dest``; return it.

    If ``dest`` already holds the marker of this very archive (same sha256), nothing is done. A
    ``dest`` with the marker of another archive is replaced once the new extraction is complete.

    Raises:
        FileNotFoundError: if the archive does not exist.
        FileExistsError: if ``dest`` exists, is not empty and was not made by :func:`extract`.
        UnsafeArchiveError: if a member is unsafe; nothing is written anywhere.
        FormatError: if the file is not a readable tar or zip archive.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    digest = sha256_file(archive)
    if dest.exists() or dest.is_symlink():
        recorded = _marker_digest(dest)
        if recorded == digest:
            return dest
        if recorded is None and not (dest.is_dir() and not any(dest.iterdir())):
            raise FileExistsError(
                f"{dest} exists but holds no '{MARKER}' marker, so it was not unpacked here; "
                f"remove it to extract {archive} into it"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if _is_zip(archive):
        _extract_zip(archive, dest, digest)
    elif _is_tar(archive):
        _extract_tar(archive, dest, digest)
    else:
        raise FormatError(f"{archive}: not a tar or zip archive")
    return dest


# ------------------------------------------------------------------------------- completeness
def check_complete(path: str | os.PathLike, name: str | None = None) -> str | None:
    """Read ``path`` through as the format its name (or ``name``, e.g. the file name of a temporary
    download) says; return that format, ``None`` if the name says none that can be checked (``.bin``).

    A tar (plain or gz/bz2/xz compressed) is read to its end, every member and the compressed
    stream's end marker and checksum included, and must end with tar's end-of-archive block; a zip
    (``.zip``, ``.npz``, ``.pt``, ``.pth``) must open and list its members (its directory is at its
    end); a ``.gz`` is decompressed to its end; an ``.npy`` must hold as many bytes as its header
    promises. A file cut short by a dropped connection fails all of these, except an uncompressed
    tar cut inside the zero padding after its end-of-archive blocks (all its members are whole).

    Raises:
        FormatError: the file is truncated or not of the format its name says, naming the file.
    """
    path = Path(path)
    name = (name or path.name).lower()
    try:
        opener = next((fn for suffix, fn in _TAR_OPENERS.items() if name.endswith(suffix)), None)
        if opener is not None:
            _read_tar_through(path, opener)
            return "tar"
        if name.endswith(_ZIP_SUFFIXES):
            with zipfile.ZipFile(path) as zf:
                zf.infolist()
            return "zip"
        if name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                while fh.read(_CHUNK):
                    pass
            return "gzip"
        if name.endswith(".npy"):
            _check_npy(path)
            return "npy"
    except FormatError:
        raise
    except (OSError, EOFError, ValueError, tarfile.TarError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise FormatError(f"{path}: truncated or malformed ({type(err).__name__}: {err})") from None
    return None


class _Counting:
    """A read-only file wrapper that counts the bytes read through it."""

    def __init__(self, fh) -> None:
        self.fh, self.count = fh, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.count += len(data)
        return data


def _read_tar_through(path: Path, opener) -> None:
    with opener(path, "rb") as raw:
        stream = _Counting(raw)
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for _ in tf:  # stream mode reads each member's data to reach the next header
                pass
            end = tf.offset  # where the next header would start: the end-of-archive block
        while stream.read(_CHUNK):  # the rest (padding), to the compressed stream's end marker
            pass
    if stream.count < end + 2 * tarfile.BLOCKSIZE or stream.count % tarfile.BLOCKSIZE:
        raise FormatError(
            f"{path}: truncated tar archive ({stream.count} bytes; its members end at {end}, and the "
            f"end-of-archive blocks and padding to whole {tarfile.BLOCKSIZE}-byte blocks must follow)"
        )


def _check_npy(path: Path) -> None:
    import numpy as np

    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(fh)
        start = fh.tell()
    if dtype.hasobject:
        raise FormatError(f"{path}: an .npy of Python objects (pickled; refused)")
    want = start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != want:
        raise FormatError(f"{path}: truncated or malformed .npy ({size} bytes, its header promises {want})")


# ----------------------------------------------------------------------------------- detection
def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except (OSError, EOFError):
        return False


def _is_zip(archive: Path) -> bool:
    if not zipfile.is_zipfile(archive):
        return False
    # a tar may contain a zip near its end; trust the name, else prefer tar
    return archive.name.lower().endswith(".zip") or not _is_tar(archive)


def _marker_digest(dest: Path) -> str | None:
    marker = dest / MARKER
    if not marker.is_file():
        return None
    fields = marker.read_text(encoding="utf-8").split()
    return fields[0] if fields else None


# ------------------------------------------------------------------------------------ safety
def _path_problem(name: str, *, backslash_is_separator: bool = False) -> str | None:
    """Why a member name could escape the destination, or ``None`` if it cannot."""
    if not name:
        return "empty member name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    parts = re.split(r"[/\\]", name) if backslash_is_separator else name.split("/")
    if ".." in parts:
        return "'..' path component"
    return None


def _normal(name: str) -> str:
    return posixpath.normpath(name)


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith(("../", "/"))


def _tar_problems(members: list[tarfile.TarInfo]) -> tuple[str, str] | None:
    """The first ``(member, reason)`` that makes a tar unsafe, or ``None``."""
    symlinks = {_normal(m.name) for m in members if m.issym()}
    for m in members:
        reason = _path_problem(m.name)
        if reason is None and (m.ischr() or m.isblk() or m.isfifo()):
            reason = "device or fifo file"
        elif reason is None and not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            reason = f"unsupported member type {m.type!r}"
        if reason is None:
            parts = _normal(m.name).split("/")
            through = next((p for i in range(1, len(parts)) if (p := "/".join(parts[:i])) in symlinks), None)
            if through is not None:
                reason = f"path goes through the symbolic link '{through}'"
        if reason is None and m.issym():
            if m.linkname.startswith("/") or _DRIVE.match(m.linkname):
                reason = f"symbolic link to the absolute path '{m.linkname}'"
            elif _escapes(_normal(posixpath.join(posixpath.dirname(_normal(m.name)), m.linkname))):
                reason = f"symbolic link to '{m.linkname}' points outside the destination"
        if reason is None and m.islnk():
            if m.linkname.startswith("/") or _DRIVE.match(m.linkname):
                reason = f"hard link to the absolute path '{m.linkname}'"
            elif _escapes(_normal(m.linkname)):
                reason = f"hard link to '{m.linkname}' points outside the destination"
        if reason is not None:
            return m.name, reason
    return None


def _zip_problems(infos: list[zipfile.ZipInfo]) -> tuple[str, str] | None:
    """The first ``(entry, reason)`` that makes a zip unsafe or unextractable, or ``None``.

    zipfile would write a symbolic-link entry (Unix mode ``S_IFLNK`` in the high bits of
    ``external_attr``) as a plain file holding the link target, and fail on an entry below it; both
    are refused here, as is an entry below an entry that is a file.
    """
    files = {_normal(i.filename.replace("\\", "/")) for i in infos if not i.is_dir()}
    for info in infos:
        name = info.filename
        reason = _path_problem(name, backslash_is_separator=True)
        if reason is None and stat.S_ISLNK(info.external_attr >> 16):
            reason = "symbolic link entry (links in zip archives are not extracted)"
        if reason is None:
            parts = _normal(name.replace("\\", "/")).split("/")
            above = next((a for i in range(1, len(parts)) if (a := "/".join(parts[:i])) in files), None)
            if above is not None:
                reason = f"path goes through the entry '{above}', which is not a folder"
        if reason is not None:
            return name, reason
    return None


# ---------------------------------------------------------------------------------- extraction
def _extract_tar(archive: Path, dest: Path, digest: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            problem = _tar_problems(members)
            if problem is not None:
                raise UnsafeArchiveError(archive, *problem)
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            with _staging(dest, archive, digest) as tmp:
                try:
                    tf.extractall(tmp, members=members, **kwargs)
                except tarfile.FilterError as err:  # the second line of defence caught something
                    raise UnsafeArchiveError(archive, err.tarinfo.name, str(err)) from None
    except (tarfile.ReadError, tarfile.CompressionError, EOFError) as err:
        raise FormatError(f"{archive}: unreadable tar archive ({err})") from None


def _extract_zip(archive: Path, dest: Path, digest: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            problem = _zip_problems(infos)
            if problem is not None:
                raise UnsafeArchiveError(archive, *problem)
            with _staging(dest, archive, digest) as tmp:
                for info in infos:
                    try:
                        zf.extract(info, tmp)
                    except (NotADirectoryError, IsADirectoryError, FileExistsError) as err:
                        raise FormatError(
                            f"{archive}: cannot extract the entry '{info.filename}' "
                            f"({err.strerror or type(err).__name__})"
                        ) from None
    except (zipfile.BadZipFile, EOFError) as err:
        raise FormatError(f"{archive}: unreadable zip archive ({err})") from None


class _staging:
    """Context manager: a temporary sibling of ``dest`` moved onto ``dest`` (with marker) on success."""

    def __init__(self, dest: Path, archive: Path, digest: str) -> None:
        self.dest, self.archive, self.digest = dest, archive, digest

    def __enter__(self) -> Path:
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".part", dir=self.dest.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                (self.tmp / MARKER).write_text(f"{self.digest}  {self.archive.name}\n", encoding="utf-8")
                os.chmod(self.tmp, 0o755)  # mkdtemp makes it private
                _replace_dir(self.tmp, self.dest)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _replace_dir(src: Path, dest: Path) -> None:
    """Rename directory ``src`` onto ``dest``, moving an existing ``dest`` aside and deleting it."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(src, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    try:
        os.replace(dest, old / "previous")
        try:
            os.replace(src, dest)
        except OSError:
            os.replace(old / "previous", dest)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)

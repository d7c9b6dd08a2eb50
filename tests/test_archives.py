"""Safe, atomic archive extraction: normal archives, hostile members, interruptions, markers."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from oodflow.archives import MARKER, UnsafeArchiveError, extract, is_archive
from oodflow.io import FormatError, sha256_file


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, size, 0o644
    return info


def _tar(path: Path, members: list, mode: str = "w:gz") -> Path:
    """Write a tar of ``members``: ``(TarInfo, data)`` pairs, or bare ``TarInfo`` for non-files."""
    with tarfile.open(path, mode) as tf:
        for member in members:
            info, data = member if isinstance(member, tuple) else (member, b"")
            if info.isfile():
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str, data: bytes = b"hello") -> tuple[tarfile.TarInfo, bytes]:
    return _info(name), data


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _assert_untouched(work: Path, dest: Path) -> None:
    """Nothing at ``dest``, no temporary siblings, nothing escaped into ``work``."""
    assert not dest.exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == []
    assert not (work / "evil").exists()


@pytest.fixture
def work(tmp_path) -> Path:
    """``tmp_path`` holds the archives; extractions go to ``tmp_path/out/<name>`` (escapes land here)."""
    (tmp_path / "out").mkdir()
    return tmp_path


def test_is_archive():
    for name in ["a.tar", "a.tar.gz", "A.TGZ", "a.tar.bz2", "a.tar.xz", "a.zip"]:
        assert is_archive(name), name
    for name in ["a.npz", "train-images-idx3-ubyte.gz", "a.mat", "a.txt"]:
        assert not is_archive(name), name


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_extracts(work, mode):
    archive = _tar(
        work / "a.tar.x",
        [_info("top", tarfile.DIRTYPE), _file("top/a.txt", b"A"), _file("top/sub/b.txt", b"B")]
        + [_info("top/link", tarfile.SYMTYPE, linkname="a.txt")],
        mode=mode,
    )
    dest = extract(archive, work / "out" / "a")
    assert dest == work / "out" / "a"
    assert (dest / "top" / "a.txt").read_text() == "A"
    assert (dest / "top" / "sub" / "b.txt").read_text() == "B"
    assert (dest / "top" / "link").read_text() == "A"  # a symlink inside the destination is fine
    assert (dest / MARKER).read_text().split()[0] == sha256_file(archive)
    assert sorted(p.name for p in (work / "out").iterdir()) == ["a"]  # no temporary siblings


def test_zip_extracts(work):
    archive = _zip(work / "a.zip", {"top/a.txt": b"A", "top/sub/b.txt": b"B"})
    dest = extract(archive, work / "out" / "a")
    assert (dest / "top" / "a.txt").read_text() == "A"
    assert (dest / "top" / "sub" / "b.txt").read_text() == "B"
    assert (dest / MARKER).is_file()


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_file("../evil"), "'..'"),
        (_file("ok/../../evil"), "'..'"),
        (_file("/tmp/evil"), "absolute"),
        (_info("passwd", tarfile.SYMTYPE, linkname="/etc/passwd"), "absolute"),
        (_info("up", tarfile.SYMTYPE, linkname="../evil"), "outside"),
        (_info("deep/up", tarfile.SYMTYPE, linkname="../../evil"), "outside"),
        (_info("hard", tarfile.LNKTYPE, linkname="../evil"), "outside"),
        (_info("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), "absolute"),
        (_info("fifo", tarfile.FIFOTYPE), "fifo"),
        (_info("dev", tarfile.CHRTYPE), "device"),
    ],
)
def test_hostile_tar_refused(work, member, reason):
    archive = _tar(work / "bad.tar.gz", [_file("fine.txt"), member])
    dest = work / "out" / "bad"
    with pytest.raises(UnsafeArchiveError, match=reason) as info:
        extract(archive, dest)
    name = member[0].name if isinstance(member, tuple) else member.name
    assert info.value.member == name
    assert f"'{name}'" in str(info.value) and "bad.tar.gz" in str(info.value)
    _assert_untouched(work, dest)


def test_member_through_symlink_refused(work):
    # each link looks inside on its own, but "a/link/up" really sits at the root and points above it
    members = [
        _info("a/link", tarfile.SYMTYPE, linkname=".."),
        _info("a/link/up", tarfile.SYMTYPE, linkname="../evil"),
    ]
    archive = _tar(work / "bad.tar", members, mode="w")
    with pytest.raises(UnsafeArchiveError, match="through the symbolic link 'a/link'"):
        extract(archive, work / "out" / "bad")
    _assert_untouched(work, work / "out" / "bad")


@pytest.mark.parametrize("name", ["../evil", "/evil", "a/../../evil", "..\\evil", "C:/evil"])
def test_hostile_zip_refused(work, name):
    archive = _zip(work / "bad.zip", {"fine.txt": b"ok", name: b"pwned"})
    dest = work / "out" / "bad"
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, dest)
    assert info.value.member == name and name in str(info.value)
    _assert_untouched(work, dest)


def _zip_link(path: Path, link: str, target: str, below: str | None) -> Path:
    """A zip whose entry ``link`` is a symbolic link to ``target`` (``below``: an entry under it)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        info = zipfile.ZipInfo(link)
        info.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK | rwx, as Info-ZIP's `zip -y` writes
        zf.writestr(info, target)
        if below is not None:
            zf.writestr(below, b"pwned")
    return path


@pytest.mark.parametrize(("target", "below"), [("/etc", "link/passwd"), ("/etc", None), ("inside.txt", None)])
def test_zip_symlink_entry_refused_by_name(work, target, below):
    archive = _zip_link(work / "bad.zip", "link", target, below)
    dest = work / "out" / "bad"
    with pytest.raises(UnsafeArchiveError, match="symbolic link entry") as info:
        extract(archive, dest)
    assert info.value.member == "link" and "'link'" in str(info.value)
    _assert_untouched(work, dest)


def test_zip_entry_below_a_file_entry_refused(work):
    archive = _zip(work / "bad.zip", {"data": b"a file", "data/x.txt": b"below it"})
    dest = work / "out" / "bad"
    with pytest.raises(UnsafeArchiveError, match="through the entry 'data', which is not a folder") as info:
        extract(archive, dest)
    assert info.value.member == "data/x.txt"
    _assert_untouched(work, dest)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_interrupted_extraction_leaves_nothing(work, monkeypatch, kind):
    if kind == "tar":
        archive = _tar(work / "a.tar.gz", [_file(f"f{i}.txt") for i in range(5)])
        cls = tarfile.TarFile
    else:
        archive = _zip(work / "a.zip", {f"f{i}.txt": b"x" for i in range(5)})
        cls = zipfile.ZipFile
    original = cls._extract_member
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "_extract_member", flaky)
    dest = work / "out" / "a"
    with pytest.raises(OSError, match="simulated"):
        extract(archive, dest)
    assert len(calls) == 3  # it did fail midway, after writing two files
    _assert_untouched(work, dest)


def test_reextract_skipped_when_marker_matches(work, monkeypatch):
    archive = _tar(work / "a.tar.gz", [_file("a.txt", b"A")])
    dest = extract(archive, work / "out" / "a")
    (dest / "a.txt").write_text("edited")  # proves the second call does not unpack again

    def fail(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(tarfile.TarFile, "extractall", fail)
    assert extract(archive, dest) == dest
    assert (dest / "a.txt").read_text() == "edited"


def test_changed_archive_replaces_previous_extraction(work):
    dest = extract(_tar(work / "a.tar.gz", [_file("old.txt")]), work / "out" / "a")
    archive = _tar(work / "a.tar.gz", [_file("new.txt")])
    assert extract(archive, dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in (work / "out").iterdir()) == ["a"]


def test_foreign_destination_refused(work):
    archive = _tar(work / "a.tar.gz", [_file("a.txt")])
    (work / "out" / "a").mkdir()
    (work / "out" / "a" / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="no '.extracted' marker"):
        extract(archive, work / "out" / "a")
    assert (work / "out" / "a" / "mine.txt").read_text() == "user data"


def test_not_an_archive(work):
    (work / "junk.tar.gz").write_bytes(b"not an archive at all" * 50)
    with pytest.raises(FormatError, match="junk.tar.gz"):
        extract(work / "junk.tar.gz", work / "out" / "junk")
    assert not (work / "out" / "junk").exists()
    with pytest.raises(FileNotFoundError):
        extract(work / "absent.tar", work / "out" / "absent")


# ------------------------------------------------------------------------------- check_complete
def _npy(path: Path) -> Path:
    import numpy as np

    np.save(path, np.arange(1000, dtype=np.int32).reshape(10, 100))
    return path


def _whole_files(work: Path) -> dict[str, Path]:
    import gzip

    members = [_file(f"d/{i}.txt", bytes(range(256)) * 8) for i in range(8)]
    files = {
        "tar": _tar(work / "a.tar", members, mode="w"),
        "tar.gz": _tar(work / "a.tar.gz", members),
        "tar.bz2": _tar(work / "a.tar.bz2", members, mode="w:bz2"),
        "tar.xz": _tar(work / "a.tar.xz", members, mode="w:xz"),
        "zip": _zip(work / "a.zip", {f"d/{i}.txt": b"x" * 500 for i in range(8)}),
        "npy": _npy(work / "a.npy"),
    }
    (work / "a.gz").write_bytes(gzip.compress(b"plain text\n" * 500))
    files["gzip"] = work / "a.gz"
    return files


def test_check_complete_accepts_whole_files(work):
    from oodflow.archives import check_complete

    for kind, path in _whole_files(work).items():
        assert check_complete(path) == kind.split(".")[0], kind
    (work / "a.bin").write_bytes(b"anything")
    assert check_complete(work / "a.bin") is None
    tmp = work / ".a.tar.gz.123.part"
    tmp.write_bytes((work / "a.tar.gz").read_bytes())
    assert check_complete(tmp, "a.tar.gz") == "tar"  # the format of the name given


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tar.bz2", "tar.xz", "zip", "gzip", "npy"])
@pytest.mark.parametrize("keep", [0.3, 0.9, -1])
def test_check_complete_refuses_truncated_files(work, kind, keep):
    from oodflow.archives import check_complete

    path = _whole_files(work)[kind]
    data = path.read_bytes()
    if kind == "tar":  # cut before the zero padding after the end-of-archive blocks (see the docstring)
        data = data[: 8 * (512 + 2048) + 1024]
    path.write_bytes(data[:keep] if keep == -1 else data[: int(len(data) * keep)])
    with pytest.raises(FormatError, match=str(path.name)):
        check_complete(path)


def test_check_complete_refuses_a_tar_cut_at_a_member_boundary(work):
    from oodflow.archives import check_complete

    path = _tar(work / "a.tar", [_file("a.txt", b"x" * 512), _file("b.txt", b"y" * 512)], mode="w")
    path.write_bytes(path.read_bytes()[: 2 * 1024])  # header + data of a.txt, header + data of b.txt
    with pytest.raises(FormatError, match="end-of-archive"):
        check_complete(path)

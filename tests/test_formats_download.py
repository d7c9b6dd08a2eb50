"""Every catalog dataset through the real download path, on tiny fakes in the exact upstream packaging.

Per dataset: the fake writers of ``fakes``/``fakes_large`` lay out what upstream leaves once unpacked;
:data:`PACKAGING` packs that layout into the catalog's resource files as upstream ships them (tarballs
and zips keeping their top-level folders, plain ``.mat``/``.gz``/``.npy``/``.npz`` files as they are);
a local HTTP server on 127.0.0.1 serves them; :func:`oodflow.download.fetch` downloads each with a
verified sha256; :func:`oodflow.steps.prepare` unpacks into ``raw/`` (plain files linked) and runs
the catalog parser; the prepared form is compared with what the fake writer says the parser must produce.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import fakes
import fakes_large
from oodflow import steps
from oodflow.archives import UnsafeArchiveError
from oodflow.data.catalog import DATASETS
from oodflow.download import DownloadError, PinnedChecksums, fetch

_IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _plain(*names: str) -> dict[str, tuple[str, ...]]:
    """Resources downloaded as plain files: each one is the raw entry of the same name."""
    return {name: (name,) for name in names}


#: Dataset -> {resource filename -> the top-level raw entries that file holds, as upstream ships it}.
#: An archive (by its name: .tar, .tar.gz, .tgz, .zip) holds those entries with their paths kept;
#: any other resource is the one plain file it names.
PACKAGING: dict[str, dict[str, tuple[str, ...]]] = {
    "cifar10": {"cifar-10-python.tar.gz": ("cifar-10-batches-py",)},
    "cifar100": {"cifar-100-python.tar.gz": ("cifar-100-python",)},
    "svhn": _plain("train_32x32.mat", "test_32x32.mat"),
    "svhn_extra": _plain("extra_32x32.mat"),
    "mnist": _plain(*(f"{n}.gz" for n in _IDX)),
    "fashion_mnist": _plain(*(f"{n}.gz" for n in _IDX)),
    "tinyimagenet": {"tiny-imagenet-200.zip": ("tiny-imagenet-200",)},
    "lsun_crop": {"LSUN.tar.gz": ("LSUN",)},
    "lsun_resize": {"LSUN_resize.tar.gz": ("LSUN_resize",)},
    "tinyimagenet_crop": {"Imagenet.tar.gz": ("Imagenet",)},
    "tinyimagenet_resize": {"Imagenet_resize.tar.gz": ("Imagenet_resize",)},
    "isun": {"iSUN.tar.gz": ("iSUN",)},
    "tinyimages_300k": _plain("300K_random_images.npy"),
    "cifar100_gan_50": _plain("samples-50.0.npz"),
    "cifar100_gan_2": _plain("samples-2.0.npz"),
    "food101": {"food-101.tar.gz": ("food-101",)},
    "flowers102": {"102flowers.tgz": ("jpg",), **_plain("imagelabels.mat", "setid.mat")},
    "oxford_pets": {"images.tar.gz": ("images",), "annotations.tar.gz": ("annotations",)},
    "dtd": {"dtd-r1.0.1.tar.gz": ("dtd",)},
    "places365_val": {
        "val_256.tar": ("val_256",),
        # the standard devkit's file lists are plain files at the top of the tar (torchvision layout)
        "filelist_places365-standard.tar": (
            "categories_places365.txt",
            "places365_train_standard.txt",
            "places365_val.txt",
        ),
    },
    "voc2012": {"VOCtrainval_11-May-2012.tar": ("VOCdevkit",)},
    "coco2014": {
        "train2014.zip": ("train2014",),
        "val2014.zip": ("val2014",),
        "annotations_trainval2014.zip": ("annotations",),
    },
    "nuswide": {
        "Groundtruth.zip": ("Groundtruth",),
        "ConceptsList.zip": ("ConceptsList",),
        "ImageList.zip": ("ImageList",),
    },
    "inaturalist_ood": {"iNaturalist.tar.gz": ("iNaturalist",)},
    "sun_ood": {"SUN.tar.gz": ("SUN",)},
    "places_ood": {"Places.tar.gz": ("Places",)},
}

#: Raw entries no resource provides: the user puts them in user/ (see the spec notes), prepare links them.
BY_HAND: dict[str, tuple[str, ...]] = {"nuswide": ("Flickr",)}

_ODIN = ("lsun_crop", "lsun_resize", "tinyimagenet_crop", "tinyimagenet_resize", "isun")
_MOS = {"inaturalist_ood": "iNaturalist", "sun_ood": "SUN", "places_ood": "Places"}

#: Dataset -> fake writer of its unpacked raw layout, returning what the parser must produce.
WRITERS: dict[str, Callable[[Path], dict]] = {
    "cifar10": fakes.write_cifar10,
    "cifar100": fakes.write_cifar100,
    "svhn": fakes.write_svhn,
    "svhn_extra": fakes.write_svhn_extra,
    "mnist": fakes.write_mnist,
    "fashion_mnist": functools.partial(fakes.write_mnist, name="fashion_mnist"),
    "tinyimagenet": fakes.write_tinyimagenet,
    **{name: functools.partial(fakes.write_odin, name=name) for name in _ODIN},
    "tinyimages_300k": fakes.write_300k,
    "cifar100_gan_50": functools.partial(fakes.write_gan, sigma="50.0"),
    "cifar100_gan_2": functools.partial(fakes.write_gan, sigma="2.0"),
    "food101": fakes_large.write_food101,
    "flowers102": fakes_large.write_flowers102,
    "oxford_pets": fakes_large.write_oxford_pets,
    "dtd": fakes_large.write_dtd,
    "places365_val": fakes_large.write_places365_val,
    "voc2012": fakes_large.write_voc2012,
    "coco2014": fakes_large.write_coco2014,
    "nuswide": fakes_large.write_nuswide,
    **{name: functools.partial(fakes_large.write_mos_ood, folder=folder) for name, folder in _MOS.items()},
}

#: The derived Places365 OOD subset drawn from the fake's 12 val images (upstream: 10,000 of 36,500).
PLACES_OOD_SIZE = 5


def scale_down(name: str) -> dict:
    """Shrink the sizes of derived subsets to what a tiny fake holds (the code path is unchanged);
    returns the parser options (config ``datasets.<name>.parser_args``) that do it."""
    if name == "svhn":  # test_selected: the first 1000 test images per label (fake: 1 of some labels)
        return {"selected_per_class": 1}
    if name == "places365_val":  # ood10k: through the parser's documented ood_size argument
        return {"ood_size": PLACES_OOD_SIZE}
    return {}


# ------------------------------------------------------------------------------------ helpers
def package(layout: Path, entries: tuple[str, ...], out: Path) -> Path:
    """Pack the top-level ``entries`` of ``layout`` into ``out`` as upstream ships that file."""
    name = out.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(out, "w") as zf:
            for entry in entries:
                top = layout / entry
                for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
                    zf.write(path, path.relative_to(layout).as_posix())
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(out, "w" if name.endswith(".tar") else "w:gz") as tf:
            for entry in entries:
                tf.add(layout / entry, arcname=entry)  # folders recursively, in sorted order
    else:
        assert entries == (out.name,), f"{out.name}: a plain file holds only itself, not {entries}"
        shutil.copyfile(layout / out.name, out)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tsv(path: Path) -> list[tuple[str, str]]:
    header, *lines = path.read_text().splitlines()
    assert header == "path\tlabel"
    return [tuple(line.split("\t")) for line in lines]


class Served:
    """A folder served over HTTP on 127.0.0.1: ``url(path)`` for a file under ``root``."""

    def __init__(self, root: Path, base: str) -> None:
        self.root, self.base = root, base

    def url(self, path: Path) -> str:
        return f"{self.base}/{quote(path.relative_to(self.root).as_posix())}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Served(root, f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def download(name: str, filename: str, served: Path, url: str, dest: Path, pins: PinnedChecksums) -> Path:
    """The catalog resource ``filename`` of ``name``, pointed at ``url`` and the fake's sha256."""
    spec_resource = next(r for r in DATASETS.get(name).resources if r.filename == filename)
    res = dataclasses.replace(spec_resource, urls=(url,), md5=None, sha256=sha256(served), size=None)
    return fetch(res, dest, dataset=name, pins=pins, backoff=0, progress=False)


def check_arrays(out: Path, prepared: dict, expected: dict) -> None:
    for split, (x, y) in expected["splits"].items():
        assert prepared["splits"][split] == {"count": len(x), "shape": list(x.shape[1:])}, split
        with np.load(out / f"{split}.npz", allow_pickle=False) as got:
            np.testing.assert_array_equal(got["x"], x, err_msg=split)
            np.testing.assert_array_equal(got["y"], y, err_msg=split)
            assert got["x"].dtype == np.uint8 and got["y"].dtype == np.int64


def check_lists(raw: Path, out: Path, prepared: dict, expected: dict) -> None:
    for split, rows in expected["splits"].items():
        assert read_tsv(out / f"{split}.tsv") == rows, split
        assert prepared["splits"][split] == {"count": len(rows)}, split
    for split in prepared["splits"]:
        for path, _ in read_tsv(out / f"{split}.tsv"):
            assert (raw / path).is_file(), f"{split}: {path} is not under raw/"


# ------------------------------------------------------------------------------------- tests
def test_tables_name_only_catalog_datasets():
    """No stale entries (missing ones fail in the per-dataset test, with a message)."""
    names = set(DATASETS.names())
    assert set(PACKAGING) <= names and set(WRITERS) <= names and set(BY_HAND) <= names


@pytest.mark.parametrize("name", DATASETS.names())
def test_download_and_prepare_on_upstream_packaging(name, server, tmp_path, monkeypatch):
    if name not in PACKAGING or name not in WRITERS:
        pytest.fail(
            f"catalog dataset '{name}' has no entry in PACKAGING/WRITERS of {Path(__file__).name}: "
            "add its fake writer and how upstream packages each of its resource files"
        )
    spec = DATASETS.get(name)
    packaging = PACKAGING[name]
    assert set(packaging) == {r.filename for r in spec.resources}, "PACKAGING differs from the spec's files"

    layout = tmp_path / "layout"
    layout.mkdir()
    expected = WRITERS[name](layout)
    provided = [entry for entries in packaging.values() for entry in entries]
    by_hand = BY_HAND.get(name, ())
    assert len(set(provided)) == len(provided), "two resources provide the same raw entry"
    assert sorted([*provided, *by_hand]) == sorted(p.name for p in layout.iterdir()), (
        "the packaging misses (or invents) a top-level entry of the fake's raw layout"
    )

    site = server.root / name
    site.mkdir()
    downloads_dir, pins = tmp_path / "downloads", PinnedChecksums(tmp_path / "pins.json")
    downloads = []
    for res in spec.resources:
        served = package(layout, packaging[res.filename], site / res.filename)
        path = download(name, res.filename, served, server.url(served), downloads_dir, pins)
        assert path == downloads_dir / res.filename and sha256(path) == sha256(served)
        downloads.append(str(path))

    raw, out, user = tmp_path / "raw", tmp_path / "prepared", tmp_path / "user"
    assert spec.user_supplied == by_hand
    for entry in by_hand:
        # NUS-WIDE's images are not downloadable: as its spec notes say, the user puts the image
        # folder (here: a link to it) at user/Flickr; steps.prepare links it into raw/.
        assert f"user/{entry}" in spec.notes, f"the spec notes of '{name}' do not say where {entry} goes"
        user.mkdir(exist_ok=True)
        (user / entry).symlink_to(layout / entry, target_is_directory=True)
    parser_args = scale_down(name)
    steps.prepare(name, downloads, str(raw), str(out), parser_args)

    assert sorted(p.name for p in raw.iterdir()) == sorted([*provided, *by_hand])
    for entry in by_hand:  # user-supplied entries linked (relative links) from user/
        assert (raw / entry).is_symlink() and not Path(os.readlink(raw / entry)).is_absolute()
        assert (raw / entry).resolve() == (layout / entry).resolve()
    for filename, entries in packaging.items():  # archives unpacked (real files), plain files linked
        for entry in entries:
            if filename == entry:
                assert (raw / entry).is_symlink() and not Path(os.readlink(raw / entry)).is_absolute()
                assert (raw / entry).resolve() == (downloads_dir / filename).resolve()
            else:
                assert not (raw / entry).is_symlink() and (raw / entry).exists()
    prepared = json.loads((out / "prepared.json").read_text())
    assert prepared["dataset"] == name and prepared["form"] == spec.form
    assert set(prepared["splits"]) == set(spec.splits)
    if "classes" in expected:
        assert prepared["classes"] == list(expected["classes"])
    if spec.form == "array":
        check_arrays(out, prepared, expected)
    else:
        check_lists(raw, out, prepared, expected)
    if name == "places365_val":
        assert prepared["splits"]["ood10k"] == {"count": PLACES_OOD_SIZE}
        assert set(read_tsv(out / "ood10k.tsv")) <= set(read_tsv(out / "val.tsv"))


# ------------------------------------------------------------------- failures (cifar10 as example)
def _cifar10_archive(site: Path, tmp_path: Path) -> Path:
    layout = tmp_path / "layout"
    fakes.write_cifar10(layout)
    site.mkdir()
    return package(layout, PACKAGING["cifar10"]["cifar-10-python.tar.gz"], site / "cifar-10-python.tar.gz")


def test_served_file_with_another_sha256_is_refused(server, tmp_path):
    served = _cifar10_archive(server.root / "cifar10-corrupt", tmp_path)
    want = sha256(served)
    served.write_bytes(served.read_bytes() + b"\0")  # the server now delivers a different file
    actual = sha256(served)
    url, dest = server.url(served), tmp_path / "downloads"
    pins = PinnedChecksums(tmp_path / "pins.json")
    spec_resource = DATASETS.get("cifar10").resources[0]
    res = dataclasses.replace(spec_resource, urls=(url,), md5=None, sha256=want)
    with pytest.raises(DownloadError) as info:
        fetch(res, dest, dataset="cifar10", pins=pins, backoff=0, progress=False)
    err = info.value
    assert err.dataset == "cifar10" and err.filename == "cifar-10-python.tar.gz"
    assert err.failures == [(url, f"sha256 mismatch: expected {want}, actual {actual}")]
    message = str(err)
    assert all(part in message for part in ("'cifar10'", url, want, actual))
    assert list(dest.iterdir()) == []  # neither the file nor a temporary part
    assert not pins.path.exists()


def test_hostile_archive_is_refused_and_writes_nothing(server, tmp_path):
    site = server.root / "cifar10-hostile"
    site.mkdir()
    served = site / "cifar-10-python.tar.gz"
    with tarfile.open(served, "w:gz") as tf:
        for member, data in (("cifar-10-batches-py/batches.meta", b"meta"), ("../evil", b"pwned")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    work = tmp_path / "work"
    pins = PinnedChecksums(tmp_path / "pins.json")
    path = download("cifar10", served.name, served, server.url(served), work / "downloads", pins)
    raw, out = work / "raw", work / "prepared"
    with pytest.raises(UnsafeArchiveError) as info:
        steps.prepare("cifar10", [str(path)], str(raw), str(out))
    assert info.value.member == "../evil" and info.value.archive == path
    assert not any(tmp_path.rglob("evil")) and not (tmp_path.parent / "evil").exists()
    assert list(raw.iterdir()) == [] and not out.exists()  # not even a partial extraction

"""oodflow.mirrors: mirror URLs from the environment, smoke mirrors accepted only by smoke runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from oodflow import steps
from oodflow.data.catalog import Resource
from oodflow.download import DownloadError
from oodflow.io import FormatError
from oodflow.mirrors import SMOKE_MANIFEST, MirrorError, smoke_manifest, sources, write_smoke_manifest

RES = Resource("a.tar.gz", ("https://upstream.example/a.tar.gz",), md5="0" * 32)


def _smoke_mirror(root: Path, content: bytes = b"fake archive") -> str:
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "a.tar.gz").write_bytes(content)
    write_smoke_manifest(root, {"ds/a.tar.gz": hashlib.sha256(content).hexdigest()})
    return root.as_uri()


def test_real_run_tries_mirrors_then_upstream():
    env = {"OODFLOW_MIRRORS": "https://m1.example/x file:///nowhere"}
    res = sources(RES, "ds", environ=env)
    assert res.urls == ("https://m1.example/x/ds/a.tar.gz", "file:///nowhere/ds/a.tar.gz", RES.urls[0])
    assert res.md5 == RES.md5  # the published checksum is kept
    only = sources(RES, "ds", environ={**env, "OODFLOW_MIRRORS_ONLY": "1"})
    assert only.urls == res.urls[:2]


def test_mirrors_only_without_mirrors_says_so():
    with pytest.raises(MirrorError, match="OODFLOW_MIRRORS_ONLY=1 and OODFLOW_MIRRORS is empty"):
        sources(RES, "ds", environ={"OODFLOW_MIRRORS_ONLY": "1"})


def test_real_run_refuses_a_smoke_mirror(tmp_path):
    base = _smoke_mirror(tmp_path / "mirror")
    with pytest.raises(MirrorError, match="smoke-test fakes.*accepted only by a smoke run"):
        sources(RES, "ds", environ={"OODFLOW_MIRRORS": base})


def test_smoke_run_uses_the_fake_checksum_and_only_the_smoke_mirror(tmp_path):
    content = b"fake archive"
    base = _smoke_mirror(tmp_path / "mirror", content)
    env = {"OODFLOW_MIRRORS": f"https://m1.example {base}"}
    res = sources(RES, "ds", smoke=True, environ=env)
    assert res.urls == (f"{base}/ds/a.tar.gz",)
    assert (res.md5, res.sha256) == (None, hashlib.sha256(content).hexdigest())


def test_smoke_run_needs_a_smoke_mirror_with_that_file(tmp_path):
    with pytest.raises(MirrorError, match="exactly one smoke mirror"):
        sources(RES, "ds", smoke=True, environ={"OODFLOW_MIRRORS": "https://m1.example"})
    base = _smoke_mirror(tmp_path / "mirror")
    with pytest.raises(MirrorError, match="has no fake of this file"):
        sources(Resource("b.zip", ("https://u/b.zip",)), "ds", smoke=True, environ={"OODFLOW_MIRRORS": base})


def test_malformed_smoke_manifest_is_named(tmp_path):
    (tmp_path / SMOKE_MANIFEST).write_text('{"sha256": {"ds/a": "not-a-digest"}}')
    with pytest.raises(FormatError, match=SMOKE_MANIFEST):
        smoke_manifest(tmp_path.as_uri())
    assert smoke_manifest("https://m1.example") is None


def test_download_of_a_fake_verifies_it_against_the_smoke_manifest(tmp_path, monkeypatch):
    """The whole download step: the fake of cifar10's archive is fetched and verified in a smoke run; a
    tampered fake fails its (smoke) checksum; a real run refuses the mirror and pins nothing."""
    content = b"not really cifar"
    mirror = tmp_path / "mirror"
    (mirror / "cifar10").mkdir(parents=True)
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(content)
    write_smoke_manifest(mirror, {"cifar10/cifar-10-python.tar.gz": hashlib.sha256(content).hexdigest()})
    pins = tmp_path / "pins.json"
    monkeypatch.setenv("OODFLOW_MIRRORS", mirror.as_uri())
    monkeypatch.setenv("OODFLOW_CHECKSUMS", str(pins))
    out = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    with pytest.raises(MirrorError):
        steps.download("cifar10", out.name, str(out))
    steps.download("cifar10", out.name, str(out), smoke=True)
    assert out.read_bytes() == content and not pins.exists()
    out.unlink()
    (mirror / "cifar10" / "cifar-10-python.tar.gz").write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        steps.download("cifar10", out.name, str(out), smoke=True)
    assert not out.exists()

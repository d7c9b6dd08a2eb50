"""Where a download comes from: the upstream URLs, mirrors named in the environment, smoke mirrors.

Environment (read by :func:`sources`):

* ``OODFLOW_MIRRORS``: space-separated base URLs (an institute's mirror, a ``file://`` folder), tried
  before upstream as ``<base>/<name>/<filename>``;
* ``OODFLOW_MIRRORS_ONLY=1``: never contact upstream (air-gapped clusters).

A **smoke mirror** is a ``file://`` folder of format-exact *fakes* written by ``python -m oodflow.smoke``
(small files in the exact upstream layouts, for toy-scale runs of a paper config on CPU). Its root holds
:data:`SMOKE_MANIFEST`, the sha256 of every fake. A fake can never match a published checksum, so a smoke
run (config ``smoke: true``) checks each fake against that manifest instead, downloads from the smoke
mirror only, and never pins anything. Every other run refuses a smoke mirror outright: fakes never
reach a real run's datasets or its pinned-checksum manifest.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from oodflow.io import FormatError, read_json, write_json

if TYPE_CHECKING:
    from oodflow.data.catalog import Resource

#: The file at the root of a smoke mirror: ``{"written_by": ..., "sha256": {"<name>/<file>": hex}}``.
SMOKE_MANIFEST = "oodflow-smoke-fakes.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MirrorError(RuntimeError):
    """A mirror that must not (or cannot) serve this run."""


def mirror_bases(environ: Mapping[str, str] | None = None) -> list[str]:
    """The base URLs of ``OODFLOW_MIRRORS``, in order."""
    env = os.environ if environ is None else environ
    return env.get("OODFLOW_MIRRORS", "").split()


def _local_folder(base: str) -> Path | None:
    """The folder of a ``file://`` base URL, else ``None``."""
    parsed = urllib.parse.urlparse(base)
    if parsed.scheme != "file":
        return None
    return Path(urllib.request.url2pathname(parsed.path))


def smoke_manifest(base: str) -> dict[str, str] | None:
    """The fakes' checksums of a smoke mirror at ``base``; ``None`` if it is not one.

    Raises:
        FormatError: if the manifest exists but is malformed.
    """
    folder = _local_folder(base)
    if folder is None or not (folder / SMOKE_MANIFEST).is_file():
        return None
    path = folder / SMOKE_MANIFEST
    data = read_json(path)
    sums = data.get("sha256") if isinstance(data, dict) else None
    if not isinstance(sums, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in sums.items()
    ):
        raise FormatError(f"{path}: expected {{'sha256': {{'<name>/<file>': <sha256>}}}}")
    return sums


def write_smoke_manifest(folder: str | os.PathLike, sha256: Mapping[str, str]) -> Path:
    """Mark ``folder`` as a smoke mirror holding fakes with these checksums (``<name>/<file>`` keys)."""
    path = Path(folder) / SMOKE_MANIFEST
    write_json(path, {"written_by": "python -m oodflow.smoke", "sha256": dict(sorted(sha256.items()))})
    return path


def sources(
    resource: Resource, name: str, *, smoke: bool = False, environ: Mapping[str, str] | None = None
) -> Resource:
    """``resource`` with the URLs (and, for a smoke run, the checksum) this run downloads it with.

    ``name`` is the catalog entry the resource belongs to (mirror paths are ``<base>/<name>/<file>``).
    Not ``smoke``: mirrors first, then upstream (none with ``OODFLOW_MIRRORS_ONLY=1``); a smoke mirror
    among the mirrors is an error. ``smoke``: the one smoke mirror of ``OODFLOW_MIRRORS`` only, and the
    sha256 its manifest gives for this file (replacing any published or pinned checksum).

    Raises:
        MirrorError: a smoke mirror in a real run; a smoke run without exactly one smoke mirror, or
            whose mirror has no fake of this file; no URL left to try.
    """
    env = os.environ if environ is None else environ
    bases = mirror_bases(env)
    key = f"{name}/{resource.filename}"
    manifests = {base: smoke_manifest(base) for base in bases}
    fakes = [base for base, sums in manifests.items() if sums is not None]
    if not smoke:
        if fakes:
            raise MirrorError(
                f"{key}: OODFLOW_MIRRORS names {fakes[0]}, a mirror of smoke-test fakes (it holds "
                f"{SMOKE_MANIFEST}); fakes are accepted only by a smoke run (`python -m oodflow.smoke`, "
                "config smoke: true). Remove it from OODFLOW_MIRRORS."
            )
        urls = [f"{base.rstrip('/')}/{key}" for base in bases]
        if env.get("OODFLOW_MIRRORS_ONLY") != "1":
            urls += resource.urls
        if not urls:
            where = (
                "OODFLOW_MIRRORS_ONLY=1 and OODFLOW_MIRRORS is empty"
                if env.get("OODFLOW_MIRRORS_ONLY") == "1"
                else "the catalog entry lists no URL"
            )
            raise MirrorError(f"{key}: no URL to download it from ({where}); set OODFLOW_MIRRORS")
        return dataclasses.replace(resource, urls=tuple(urls))
    if len(fakes) != 1:
        raise MirrorError(
            f"{key}: a smoke run (config smoke: true) downloads from exactly one smoke mirror in "
            f"OODFLOW_MIRRORS (a file:// folder with {SMOKE_MANIFEST}, written by "
            f"`python -m oodflow.smoke`); found {len(fakes)} among {bases or 'none'}"
        )
    sha = manifests[fakes[0]].get(key)
    if sha is None:
        raise MirrorError(f"{key}: the smoke mirror {fakes[0]} has no fake of this file")
    return dataclasses.replace(
        resource, urls=(f"{fakes[0].rstrip('/')}/{key}",), md5=None, sha256=sha, size=None
    )

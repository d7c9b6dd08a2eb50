"""Verified, atomic downloads with retries and mirrors (stdlib ``urllib`` only).

:func:`fetch` streams one :class:`~oodflow.data.catalog.Resource` into a temporary file next to its
destination and moves it into place only once the transfer is complete and the checksum matches, so
the output path only ever holds a verified file. Per URL, transient failures (network errors,
timeouts, HTTP 5xx, truncated transfers) are retried with exponential backoff; permanent failures
(HTTP 404 and other 4xx, a checksum mismatch, a URL of unknown scheme such as ``htp://``) and
exhausted retries move on to the next mirror. When
every URL failed, :class:`DownloadError` names the dataset, each URL with its failure reason, and how
to recover.

Every attempt has an overall **deadline** and a **minimum transfer rate** averaged over a sliding
window (:class:`Pace`; keyword arguments of :func:`fetch`, else the environment variables
``OODFLOW_DOWNLOAD_DEADLINE`` (seconds, default 24 h), ``OODFLOW_DOWNLOAD_MIN_RATE`` (bytes/s,
default 10 KiB/s; 0 disables) and ``OODFLOW_DOWNLOAD_RATE_WINDOW`` (seconds, default 60)). A watchdog
thread checks both while the attempt runs, headers included, and closes the connection on a breach,
so a server that trickles a byte now and then (which never trips the socket timeout) fails the
attempt as a transient error naming the limit and how to change it.

Resources without a published checksum are checked against :class:`PinnedChecksums`, a committed
``config/checksums.json`` manifest: the first verified download pins its sha256 and every later
download must match it (trust on first use, made reproducible by committing the manifest). Only a
file known to be whole is pinned: it must read through as the format its name says
(:func:`oodflow.archives.check_complete`: tar, zip, gzip, npy), or match the catalog's ``size``, or
a published sha256 prefix; a truncated first download (``file://``, or HTTP without
``Content-Length`` when the connection drops) is refused, not kept and not pinned. Where
upstream publishes only a prefix of the sha256 (torchvision embeds the first 8 hex digits in its
weight file names, e.g. ``resnet50-0676ba61.pth``), the first download must also match that prefix
before it is pinned; once pinned, the full pinned sha256 is what every later download is checked
against (a manifest that pins another file, such as a smoke run's fakes, is an explicit choice).
``file://`` URLs work like any other, which makes local mirrors easy.

A retry of an HTTP(S) transfer that broke off **resumes** (RFC 9110 range requests): it asks for
``Range: bytes=N-`` (``N``: the bytes already in the temporary file) with ``If-Range`` set to the
first response's strong ``ETag`` or ``Last-Modified``, and appends a ``206`` answer whose
``Content-Range`` starts at ``N``. A server that ignores ranges (``200``), or whose file changed
(``If-Range`` fails: ``200``), restarts the file from zero; a ``416`` or a ``206`` starting elsewhere
restarts it on the next attempt. The checksum and completeness checks see the whole file as always; a
resumed file that fails its checksum is downloaded once more from zero before the URL counts as bad.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from oodflow.archives import check_complete
from oodflow.io import FormatError, atomic_path, read_json, sha256_file, write_json

if TYPE_CHECKING:
    from oodflow.data.catalog import Resource

log = logging.getLogger(__name__)

#: The committed manifest of pinned sha256 checksums, at the repository root.
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "config" / "checksums.json"

CHUNK = 1 << 20
USER_AGENT = "oodflow-downloader/1 (Python urllib)"
_TRANSIENT_HTTP = {408, 425, 429}
#: URL schemes urllib downloads from; any other (a typo such as ``htp://``) is a permanent error.
_SCHEMES = ("http", "https", "file", "ftp")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")

RECOVERY_HINTS = (
    "To recover: retry later if the failure was a transient network error; "
    "add another mirror to the resource's urls in the {kind} catalog (or set OODFLOW_MIRRORS); "
    "or run `dvc pull` if a DVC remote holds the data."
)


class DownloadError(RuntimeError):
    """No URL of a resource delivered a complete file with the expected checksum.

    Attributes:
        dataset: the catalog entry the resource belongs to (a dataset, or a weights entry).
        filename: the resource's file name.
        failures: ``(url, reason)`` for every URL tried, in order.
        kind: what ``dataset`` names, for the message: ``"dataset"`` or ``"weights"``.
        hint: an extra line of advice (e.g. how to re-pin a checksum pinned by a bad download).
    """

    def __init__(
        self,
        dataset: str,
        filename: str,
        failures: list[tuple[str, str]],
        kind: str = "dataset",
        hint: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.filename = filename
        self.failures = list(failures)
        self.kind = kind
        lines = [f"could not download '{filename}' of {kind} '{dataset}'; URLs tried:"]
        lines += [f"  - {url}: {reason}" for url, reason in self.failures]
        if hint:
            lines.append(hint)
        lines.append(RECOVERY_HINTS.format(kind=kind))
        super().__init__("\n".join(lines))


class _Transient(Exception):
    """A failure worth retrying on the same URL."""


class _Permanent(Exception):
    """A failure that retrying the same URL will not fix."""


def md5_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """The hex md5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    """Hex digests of ``path`` for several algorithms in one pass."""
    hashers = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            for h in hashers.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashers.items()}


# --------------------------------------------------------------------------------- pinned manifest
class PinnedChecksums:
    """A JSON manifest mapping ``"<dataset>/<filename>"`` to the sha256 of its first verified download.

    The manifest (by default ``config/checksums.json`` of the repository) is committed with the code,
    so every later download, on any machine, is checked against the first one: a silently changed
    upstream file is an error, not a different experiment. Pins are never overwritten: to accept a
    legitimately changed upstream file, verify it and remove the old entry by hand.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_MANIFEST) -> None:
        self.path = Path(path)

    @staticmethod
    def key(dataset: str, filename: str) -> str:
        return f"{dataset}/{filename}"

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        data = read_json(self.path)
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in data.items()
        ):
            raise FormatError(f"{self.path}: expected an object mapping 'dataset/filename' to a sha256")
        return data

    def get(self, dataset: str, filename: str) -> str | None:
        """The pinned sha256 of a resource, or ``None`` if it has none yet."""
        return self._load().get(self.key(dataset, filename))

    def pin(self, dataset: str, filename: str, sha256: str) -> None:
        """Record ``sha256`` for a resource (atomic write, sorted keys).

        Raises:
            ValueError: if ``sha256`` is not a hex sha256, or a different sha256 is already pinned.
        """
        sha256 = sha256.lower()
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        key = self.key(dataset, filename)
        with _locked(self.path.parent):
            pins = self._load()
            current = pins.get(key)
            if current == sha256:
                return
            if current is not None:
                raise ValueError(
                    f"{self.path}: '{key}' is pinned to sha256 {current}, refusing to overwrite it with "
                    f"{sha256}; remove the old pin by hand if the upstream file legitimately changed"
                )
            pins[key] = sha256
            write_json(self.path, pins)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (POSIX; a no-op elsewhere).

    Parallel download jobs may pin at the same time; the lock makes read-modify-write safe.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ------------------------------------------------------------------------------------ verification
def _expected(resource: Resource, pinned: str | None) -> dict[str, str]:
    """``{algorithm: expected hex digest}`` for a resource (published checksums, else the pin)."""
    expected = {}
    if resource.md5:
        expected["md5"] = resource.md5.lower()
    if resource.sha256:
        expected["sha256"] = resource.sha256.lower()
    if not expected and pinned:
        expected["sha256"] = pinned.lower()
    return expected


def _prefix(resource: Resource, expected: dict[str, str]) -> str | None:
    """The published sha256 prefix to check: only when no full checksum (published or pinned) is."""
    if expected or not resource.sha256_prefix:
        return None
    prefix = resource.sha256_prefix.lower()
    if not _HEX_PREFIX.fullmatch(prefix):
        raise ValueError(f"{resource.filename}: sha256_prefix {resource.sha256_prefix!r} is not hex")
    return prefix


def _mismatches(path: Path, expected: dict[str, str], prefix: str | None = None) -> list[str]:
    """Descriptions of every checksum of ``path`` that differs from ``expected`` (and, given a
    ``prefix``, of a sha256 that does not start with it)."""
    actual = _digests(path, sorted({*expected, *(["sha256"] if prefix else [])}))
    found = [
        f"{name} mismatch: expected {want}, actual {actual[name]}"
        for name, want in sorted(expected.items())
        if actual[name] != want
    ]
    if prefix and not actual["sha256"].startswith(prefix):
        found.append(f"sha256 prefix mismatch: expected {prefix}..., actual {actual['sha256']}")
    return found


# ------------------------------------------------------------------------------------------- pace
#: Defaults of :class:`Pace`: a day per attempt (a 19 GB archive at 0.25 MB/s), 10 KiB/s over 60 s.
DEFAULT_DEADLINE = 24 * 3600.0
DEFAULT_MIN_RATE = 10 * 1024.0
DEFAULT_RATE_WINDOW = 60.0
_PACE_ENV = {
    "deadline": "OODFLOW_DOWNLOAD_DEADLINE",
    "min_rate": "OODFLOW_DOWNLOAD_MIN_RATE",
    "rate_window": "OODFLOW_DOWNLOAD_RATE_WINDOW",
}


@dataclass(frozen=True)
class Pace:
    """The limits of one download attempt.

    Attributes:
        deadline: seconds an attempt may take in all (connecting and headers included).
        min_rate: bytes/s an attempt must average over every ``rate_window`` seconds (0: no minimum).
        rate_window: the window, in seconds, of the rate (the first window starts with the attempt).
    """

    deadline: float = DEFAULT_DEADLINE
    min_rate: float = DEFAULT_MIN_RATE
    rate_window: float = DEFAULT_RATE_WINDOW

    def __post_init__(self) -> None:
        if not (self.deadline > 0 and self.rate_window > 0 and self.min_rate >= 0):
            raise ValueError(
                f"download limits need deadline > 0, rate_window > 0 and min_rate >= 0; got {self}"
            )

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **given: float | None) -> Pace:
        """The limits given (not ``None``), else those of the environment, else the defaults.

        Raises:
            ValueError: an environment variable that is not a number, or a limit out of range.
        """
        env = os.environ if environ is None else environ
        values = {}
        for field, var in _PACE_ENV.items():
            value = given.get(field)
            if value is None and env.get(var, "").strip():
                try:
                    value = float(env[var])
                except ValueError:
                    raise ValueError(f"{var}={env[var]!r} is not a number") from None
            if value is not None:
                values[field] = float(value)
        return cls(**values)


class _Watch:
    """A watchdog over one attempt: checks its :class:`Pace` every tick (in a thread) and, on a
    breach, records why and shuts down the attempt's sockets, so a blocked read returns."""

    def __init__(self, pace: Pace) -> None:
        self.pace = pace
        self.start = time.monotonic()
        self.received = 0
        self.breach: str | None = None
        self._samples: deque[tuple[float, int]] = deque([(self.start, 0)])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oodflow-download-watch", daemon=True)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def register(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.breach is not None:
                _shutdown(sock)
        return sock

    def check(self, now: float) -> str | None:
        """Why the attempt breaks its pace at ``now``, or ``None``."""
        pace, received, elapsed = self.pace, self.received, now - self.start
        if elapsed > pace.deadline:
            return (
                f"too slow: the deadline of {pace.deadline:g} s per attempt passed after {received} bytes "
                f"(set it with deadline= or {_PACE_ENV['deadline']})"
            )
        samples = self._samples
        samples.append((now, received))
        while len(samples) > 1 and samples[1][0] <= now - pace.rate_window:
            samples.popleft()
        t0, r0 = samples[0]
        if pace.min_rate and elapsed >= pace.rate_window and now > t0:
            rate = (received - r0) / (now - t0)
            if rate < pace.min_rate:
                return (
                    f"too slow: {received - r0} bytes in the last {now - t0:.3g} s ({rate:.3g} B/s), below "
                    f"the minimum of {pace.min_rate:g} B/s averaged over {pace.rate_window:g} s (set them "
                    f"with min_rate= and rate_window=, or {_PACE_ENV['min_rate']} and "
                    f"{_PACE_ENV['rate_window']})"
                )
        return None

    def _run(self) -> None:
        tick = min(1.0, self.pace.rate_window / 8, self.pace.deadline / 8)
        while not self._stop.wait(tick):
            reason = self.check(time.monotonic())
            if reason is not None:
                with self._lock:
                    self.breach = reason
                    for sock in self._sockets:
                        _shutdown(sock)
                return


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _opener(watch: _Watch) -> urllib.request.OpenerDirector:
    """An opener whose HTTP(S) connections register their sockets with ``watch``."""

    def watched(base: type[http.client.HTTPConnection]):
        def make(*args, **kwargs):
            conn = base(*args, **kwargs)
            create = conn._create_connection
            conn._create_connection = lambda *a, **k: watch.register(create(*a, **k))
            return conn

        return make

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(HTTP(), HTTPS())


# ---------------------------------------------------------------------------------------- transfer
def _transfer(
    url: str,
    tmp: Path,
    *,
    size: int | None,
    timeout: float,
    desc: str,
    progress: bool,
    pace: Pace | None = None,
    resume: _Resume | None = None,
) -> int:
    """Stream ``url`` into ``tmp`` (overwritten) within ``pace``; return the bytes of the file.

    ``resume`` (HTTP(S) only): the state of the earlier attempts at this URL; when it holds a
    partial file, the transfer asks for the rest of it (module docstring) and appends.

    Raises:
        _Transient: on network errors, timeouts, a breach of ``pace``, HTTP 5xx/408/429 and
            truncated transfers.
        _Permanent: on other HTTP errors, missing local files, unsupported URLs, oversize files.
        OSError: on local write errors (a full disk is not the server's fault).
    """
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme not in _SCHEMES:
        raise _Permanent(
            f"unusable URL: unknown scheme {scheme + '://' if scheme else '(none)'} "
            f"(supported: {', '.join(s + '://' for s in _SCHEMES)})"
        )
    pace = pace or Pace()
    with _Watch(pace) as watch:
        try:
            received, total = _stream(
                url, tmp, watch, min(timeout, pace.deadline), size, desc, progress, resume
            )
        except (_Transient, _Permanent):
            if watch.breach is not None:
                raise _Transient(watch.breach) from None
            raise
        if watch.breach is not None:
            raise _Transient(watch.breach)
    for promised in {total, size} - {None}:
        if received < promised:
            raise _Transient(f"truncated transfer: received {received} of {promised} bytes")
    if size is not None and received > size:
        raise _Permanent(f"size mismatch: expected {size} bytes, received {received}")
    return received


@dataclass
class _Resume:
    """What a retry at the same HTTP(S) URL needs to resume: the first response's validator for
    ``If-Range`` and whether the next attempt may ask for a range at all (the temporary file's
    length is the offset)."""

    validator: str | None = None
    allowed: bool = True
    restart: bool = False  # the next attempt starts from zero (then resuming is allowed again)
    resumed: bool = False  # the last transfer appended to an earlier attempt's bytes

    def offset(self, url: str, tmp: Path) -> int:
        restart, self.restart = self.restart, False
        if restart or not (self.allowed and url.lower().startswith(("http:", "https:")) and tmp.is_file()):
            return 0
        return tmp.stat().st_size


def _validator(headers) -> str | None:
    """A response's validator usable in ``If-Range``: a strong ETag, else Last-Modified."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def _stream(
    url: str,
    tmp: Path,
    watch: _Watch,
    timeout: float,
    size: int | None,
    desc: str,
    progress: bool,
    resume: _Resume | None = None,
) -> tuple[int, int | None]:
    """The transfer of :func:`_transfer`: ``(bytes of the file, bytes promised or None)``."""
    resume = resume if resume is not None else _Resume(allowed=False)
    offset = resume.offset(url, tmp)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if resume.validator:
            headers["If-Range"] = resume.validator
    request = urllib.request.Request(url, headers=headers)
    received, start, resume.resumed = 0, 0, False
    try:
        with _opener(watch).open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            length = int(length) if length and length.strip().isdigit() else None
            if offset and getattr(response, "status", 200) == 206:
                found = _CONTENT_RANGE.match(response.headers.get("Content-Range") or "")
                if found is None or int(found.group(1)) != offset:
                    resume.restart = True
                    raise _Transient(
                        f"the server answered the range request for bytes {offset}- with "
                        f"'{response.headers.get('Content-Range')}'; restarting from zero"
                    )
                start = offset
                if found.group(3) != "*":
                    length = int(found.group(3)) - offset
                log.info("%s: resuming at byte %d of %s", desc, offset, url)
            else:  # the whole file (a first attempt, or a server that ignores or refuses the range)
                resume.validator = _validator(response.headers)
            total = start + length if length is not None else size
            received, resume.resumed = start, bool(start)
            read = getattr(response, "read1", response.read)  # what has arrived, not a full CHUNK
            with (
                open(tmp, "ab" if start else "wb") as out,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=desc,
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                if start:
                    out.truncate(start)
                while block := read(CHUNK):
                    out.write(block)
                    received += len(block)
                    watch.received = received - start
                    bar.update(len(block))
                    if watch.breach is not None:
                        break
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the partial file is no prefix the server can continue
            resume.restart = True
            raise _Transient(f"HTTP 416 for the range bytes={offset}-; restarting from zero") from None
        reason = f"HTTP {err.code} {err.reason}"
        if err.code >= 500 or err.code in _TRANSIENT_HTTP:
            raise _Transient(reason) from None
        raise _Permanent(reason) from None
    except urllib.error.URLError as err:
        if url.startswith("file:"):
            raise _Permanent(f"cannot read local file ({err.reason})") from None
        raise _Transient(f"network error ({err.reason})") from None
    except (TimeoutError, http.client.HTTPException, ConnectionError, ssl.SSLError) as err:
        raise _Transient(f"network error ({type(err).__name__}: {err})") from None
    except ValueError as err:  # e.g. a malformed URL
        raise _Permanent(f"unusable URL ({err})") from None
    except OSError as err:  # a socket shut down by the watchdog; a local write error is raised
        if watch.breach is None:
            raise
        raise _Transient(f"network error ({type(err).__name__}: {err})") from None
    return received, total


# ------------------------------------------------------------------------------------------- fetch
def fetch(
    resource: Resource,
    dest_dir: str | os.PathLike,
    *,
    dataset: str,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
    pins: PinnedChecksums | None = None,
    kind: str = "dataset",
    deadline: float | None = None,
    min_rate: float | None = None,
    rate_window: float | None = None,
) -> Path:
    """Download ``resource`` into ``dest_dir/resource.filename``, verified, and return that path.

    Args:
        resource: the file, its URLs (upstream first, then mirrors) and published checksums.
        dest_dir: the directory to download into (created if missing).
        dataset: the dataset name, for messages and the pinned-checksum key.
        retries: extra attempts per URL after a transient failure (so ``1 + retries`` attempts).
        backoff: seconds before the first retry; doubled before each further one (0 disables).
        timeout: socket timeout in seconds for connecting and for each read.
        progress: show a tqdm progress bar.
        pins: the pinned-checksum manifest used when ``resource`` has neither md5 nor sha256;
            ``None`` means the repository's :data:`DEFAULT_MANIFEST`.
        kind: what ``dataset`` names, for messages (``"dataset"``, ``"weights"``).
        deadline, min_rate, rate_window: the :class:`Pace` of every attempt (seconds in all; bytes/s
            averaged over ``rate_window`` seconds); ``None``: ``OODFLOW_DOWNLOAD_DEADLINE``,
            ``OODFLOW_DOWNLOAD_MIN_RATE``, ``OODFLOW_DOWNLOAD_RATE_WINDOW``, else 24 h, 10 KiB/s, 60 s.

    An existing file at the destination that verifies is returned without downloading; one that
    does not verify (or cannot be verified: no checksum and no pin) is removed and downloaded again.
    Without a published checksum, a pinned sha256 is verified; with no pin yet, the download must
    match the published ``sha256_prefix`` if there is one, and its sha256 is then pinned.

    Raises:
        DownloadError: if no URL delivered a complete file with the expected checksum; nothing is
            left at the destination (nor any temporary file).
        ValueError: on an invalid argument (no URLs, negative retries or backoff, a bad limit).
    """
    if not resource.urls:
        raise ValueError(f"{dataset}/{resource.filename}: the resource has no URLs")
    if retries < 0 or backoff < 0:
        raise ValueError(f"retries and backoff must be >= 0, got {retries} and {backoff}")
    pace = Pace.resolve(deadline=deadline, min_rate=min_rate, rate_window=rate_window)
    pins = PinnedChecksums() if pins is None else pins
    checksummed = bool(resource.md5 or resource.sha256)
    pinned = None if checksummed else pins.get(dataset, resource.filename)
    expected = _expected(resource, pinned)
    prefix = _prefix(resource, expected)
    if pinned and resource.sha256_prefix and not pinned.startswith(resource.sha256_prefix.lower()):
        log.warning(
            "%s: the sha256 of %s pinned in %s does not start with the published prefix %s; checking the pin",
            dataset,
            resource.filename,
            pins.path,
            resource.sha256_prefix,
        )
    target = Path(dest_dir) / resource.filename

    if target.is_file():
        if expected and not _mismatches(target, expected):
            log.info("%s: %s already present and verified", dataset, target)
            return target
        log.warning("%s: %s exists but does not verify; downloading it again", dataset, target)
        target.unlink()

    failures: list[tuple[str, str]] = []
    with atomic_path(target) as tmp:
        for url in resource.urls:
            reason = _try_url(
                url, tmp, resource, expected, prefix, dataset, retries, backoff, timeout, progress, pace
            )
            if reason is None:
                break
            if pinned:
                reason += " (against the sha256 pinned by a first download; none is published)"
            failures.append((url, reason))
            log.warning("%s: %s failed: %s", dataset, url, reason)
        else:
            hint = _repin_hint(pins, dataset, resource) if pinned else None
            raise DownloadError(dataset, resource.filename, failures, kind=kind, hint=hint)
        actual_sha256 = None if expected else sha256_file(tmp)
    if actual_sha256 is not None:
        pins.pin(dataset, resource.filename, actual_sha256)
        log.info("%s: pinned sha256 %s of %s in %s", dataset, actual_sha256, resource.filename, pins.path)
    return target


def _repin_hint(pins: PinnedChecksums, dataset: str, resource: Resource) -> str:
    key = pins.key(dataset, resource.filename)
    return (
        f"The expected sha256 is not published: it was pinned by the first download of this file, in "
        f"{pins.path} under the key '{key}'. If that pin is wrong (a bad first download) or the file "
        f"legitimately changed upstream: fetch the file by hand and verify it (e.g. that it extracts), "
        f"then delete the key '{key}' from {pins.path} and rerun; the next whole download is pinned."
    )


def _whole(path: Path, url: str, resource: Resource, prefix: str | None) -> None:
    """Check that a download about to be pinned is whole (see the module docstring).

    Raises:
        _Transient: an incomplete file over the network (a dropped connection; worth retrying).
        _Permanent: an incomplete local file, or one that nothing can show to be whole.
    """
    try:
        checked = check_complete(path, resource.filename)
    except FormatError as err:
        reason = f"{str(err).replace(str(path), 'the download')}: refusing to pin its sha256"
        raise (_Permanent if url.startswith("file:") else _Transient)(reason) from None
    if checked is None and resource.size is None and prefix is None:
        raise _Permanent(
            f"nothing shows that the download of '{resource.filename}' is whole (no published checksum "
            "or size, and not a tar/zip/gzip/npy file that can be read through), so its sha256 is not "
            "pinned; add its size or sha256 to the catalog entry"
        )


def _try_url(
    url: str,
    tmp: Path,
    resource: Resource,
    expected: dict[str, str],
    prefix: str | None,
    dataset: str,
    retries: int,
    backoff: float,
    timeout: float,
    progress: bool,
    pace: Pace | None = None,
) -> str | None:
    """Download ``url`` into ``tmp`` with retries; ``None`` on success, else the failure reason."""
    desc = f"{dataset}/{resource.filename}"
    resume = _Resume()
    tmp.unlink(missing_ok=True)  # nothing of another URL's attempts is resumed
    for attempt in range(1 + retries):
        if attempt and backoff:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _transfer(
                url, tmp, size=resource.size, timeout=timeout, desc=desc, progress=progress, pace=pace,
                resume=resume,
            )  # fmt: skip
            mismatches = _mismatches(tmp, expected, prefix) if expected or prefix else []
            if mismatches and resume.resumed and attempt < retries:
                log.warning("%s: %s: the resumed file does not verify; downloading it again", dataset, url)
                resume.restart = True
                reason = "; ".join(mismatches)
                continue
            if mismatches:
                return "; ".join(mismatches)
            if not expected:  # no published or pinned checksum: the sha256 of this download gets pinned
                _whole(tmp, url, resource, prefix)
        except _Permanent as err:
            return str(err)
        except _Transient as err:
            reason = f"{err} (after {attempt + 1} attempt{'s' if attempt else ''})"
            if attempt < retries:
                log.warning("%s: %s: %s; retrying", dataset, url, err)
            continue
        return None
    return reason

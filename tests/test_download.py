"""Downloads against a local HTTP server on 127.0.0.1: retries, mirrors, checksums, pins, atomicity."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oodflow.data.catalog import Resource
from oodflow.download import DownloadError, PinnedChecksums, fetch, md5_file

PAYLOAD = b"oodflow test payload\n" * 500
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """What the handler serves (mutable by tests) and how often each path was requested."""

    def __init__(self) -> None:
        self.content = PAYLOAD
        self.requests: Counter[str] = Counter()
        self.failed_once: set[str] = set()
        self.url = ""
        self.headers: list[dict[str, str]] = []  # of every request, in order

    def __call__(self, route: str, name: str = "data.bin") -> str:
        return f"{self.url}/{route}/{name}"


def _handler(state: _Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, body: bytes, length: int | None = None) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def _trickle(self, data: bytes) -> None:
            import time

            try:
                for i in range(min(len(data), 200)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:  # the client gave up
                pass
            self.close_connection = True

        def _ranged(self, honour: bool) -> None:
            """The first request breaks off after 3/8 of the file; later ones honour ``Range``
            (206 and the rest) or, if not ``honour``, ignore it (200 and the whole file)."""
            body, etag = state.content, '"v1"'
            asked = self.headers.get("Range")
            if state.requests[self.path] == 1:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body[: 3 * len(body) // 8])
                self.close_connection = True
            elif honour and asked and self.headers.get("If-Range") == etag:
                start = int(asked.removeprefix("bytes=").removesuffix("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body[start:])
            else:
                self._send(body)

        def do_GET(self) -> None:
            state.requests[self.path] += 1
            state.headers.append(dict(self.headers))
            route = self.path.split("/")[1]
            if route in ("drop", "droprange200"):
                self._ranged(honour=route == "drop")
            elif route == "ok":
                self._send(state.content)
            elif route == "corrupt":
                self._send(b"X" + state.content[1:])
            elif route == "flaky" and self.path not in state.failed_once:
                state.failed_once.add(self.path)
                self.send_error(500, "Internal Server Error")
            elif route == "flaky":
                self._send(state.content)
            elif route == "truncated":  # promise everything, send half, close the connection
                self._send(state.content[: len(state.content) // 2], length=len(state.content))
                self.close_connection = True
            elif route == "nolength":  # no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.end_headers()
                self.wfile.write(state.content)
                self.close_connection = True
            elif route == "trickle":  # headers at once, then a byte every 50 ms (20 B/s), for 10 s at most
                self.send_response(200)
                self.send_header("Content-Length", str(len(state.content)))
                self.end_headers()
                self._trickle(state.content)
            elif route == "slowheaders":  # even the status line and headers trickle
                self._trickle(b"HTTP/1.0 200 OK\r\n" + b"X-Pad: a\r\n" * 1000)
            elif route == "unavailable":
                self.send_error(503, "Service Unavailable")
            else:
                self.send_error(404, "Not Found")

    return Handler


@pytest.fixture
def server():
    state = _Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def pins(tmp_path) -> PinnedChecksums:
    return PinnedChecksums(tmp_path / "config" / "checksums.json")


def _fetch(resource: Resource, dest: Path, pins: PinnedChecksums, **kwargs) -> Path:
    options = {"dataset": "toy", "retries": 2, "backoff": 0, "timeout": 5, "progress": False, "pins": pins}
    return fetch(resource, dest, **(options | kwargs))


def _assert_empty(dest: Path) -> None:
    assert not dest.exists() or list(dest.iterdir()) == [], list(dest.iterdir())


def test_md5_file(tmp_path):
    (tmp_path / "f").write_bytes(PAYLOAD)
    assert md5_file(tmp_path / "f") == MD5


def test_success_with_md5(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),), md5=MD5)
    path = _fetch(res, tmp_path / "dl", pins, progress=True)
    assert path == tmp_path / "dl" / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.bin"]  # no temporary files
    assert not pins.path.exists()  # published checksum: nothing pinned


def test_success_with_sha256_and_size(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),), sha256=SHA256, size=len(PAYLOAD))
    assert _fetch(res, tmp_path, pins).read_bytes() == PAYLOAD


def test_checksum_mismatch_on_all_mirrors(server, tmp_path, pins):
    urls = (server("corrupt", "a.bin"), server("corrupt", "b.bin"))
    res = Resource("data.bin", urls, md5=MD5)
    with pytest.raises(DownloadError) as info:
        _fetch(res, tmp_path / "dl", pins)
    msg = str(info.value)
    actual = hashlib.md5(b"X" + PAYLOAD[1:]).hexdigest()
    assert "toy" in msg and "data.bin" in msg
    assert all(url in msg for url in urls)
    assert MD5 in msg and actual in msg
    assert "retry" in msg and "mirror" in msg and "dvc pull" in msg
    assert [url for url, _ in info.value.failures] == list(urls)
    _assert_empty(tmp_path / "dl")
    assert server.requests["/corrupt/a.bin"] == 1  # a checksum mismatch is not retried on the same URL


def test_truncated_transfer_retried_then_error(server, tmp_path, pins):
    url = server("truncated")
    res = Resource("data.bin", (url,), md5=MD5)
    with pytest.raises(DownloadError, match="truncated") as info:
        _fetch(res, tmp_path / "dl", pins, retries=2)
    assert url in str(info.value)
    assert server.requests["/truncated/data.bin"] == 3  # 1 + retries
    _assert_empty(tmp_path / "dl")


def test_truncation_detected_from_resource_size_without_checksum(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),), size=len(PAYLOAD) + 10)
    with pytest.raises(DownloadError, match="truncated"):
        _fetch(res, tmp_path / "dl", pins, retries=0)
    _assert_empty(tmp_path / "dl")
    assert not pins.path.exists()  # nothing pinned for a failed download


def test_404_falls_back_to_mirror(server, tmp_path, pins):
    res = Resource("data.bin", (server("missing"), server("ok")), md5=MD5)
    assert _fetch(res, tmp_path, pins).read_bytes() == PAYLOAD
    assert server.requests["/missing/data.bin"] == 1  # permanent error: no retry
    assert server.requests["/ok/data.bin"] == 1


def test_500_then_retry_succeeds(server, tmp_path, pins):
    res = Resource("data.bin", (server("flaky"),), sha256=SHA256)
    assert _fetch(res, tmp_path, pins).read_bytes() == PAYLOAD
    assert server.requests["/flaky/data.bin"] == 2


def test_5xx_retries_exhausted_then_mirror(server, tmp_path, pins):
    res = Resource("data.bin", (server("unavailable"), server("ok")), md5=MD5)
    assert _fetch(res, tmp_path, pins, retries=1).read_bytes() == PAYLOAD
    assert server.requests["/unavailable/data.bin"] == 2


def test_connection_refused_is_reported(tmp_path, pins):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.bin"
    with pytest.raises(DownloadError, match="network error"):
        _fetch(Resource("data.bin", (url,), md5=MD5), tmp_path / "dl", pins, retries=1)
    _assert_empty(tmp_path / "dl")


def test_existing_verified_file_not_downloaded(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),), md5=MD5)
    _fetch(res, tmp_path, pins)
    _fetch(res, tmp_path, pins)
    assert server.requests["/ok/data.bin"] == 1


def test_existing_corrupt_file_downloaded_again(server, tmp_path, pins):
    (tmp_path / "data.bin").write_bytes(b"stale")
    res = Resource("data.bin", (server("ok"),), md5=MD5)
    assert _fetch(res, tmp_path, pins).read_bytes() == PAYLOAD
    assert server.requests["/ok/data.bin"] == 1


def test_pinned_manifest(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),), size=len(PAYLOAD))  # no checksum published; a size
    path = _fetch(res, tmp_path / "dl", pins)
    assert pins.get("toy", "data.bin") == SHA256  # first verified download pins
    assert '"toy/data.bin"' in pins.path.read_text()

    path.unlink()
    _fetch(res, tmp_path / "dl", pins)  # second download verifies against the pin
    assert server.requests["/ok/data.bin"] == 2
    _fetch(res, tmp_path / "dl", pins)  # present and matching the pin: no request
    assert server.requests["/ok/data.bin"] == 2

    path.unlink()
    server.content = b"Y" + PAYLOAD[1:]  # changed upstream, same size
    with pytest.raises(DownloadError) as info:
        _fetch(res, tmp_path / "dl", pins)
    msg = str(info.value)
    assert SHA256 in msg and hashlib.sha256(server.content).hexdigest() in msg
    assert str(pins.path) in msg
    _assert_empty(tmp_path / "dl")
    assert pins.get("toy", "data.bin") == SHA256  # the pin is unchanged


def _tar_gz(members: int = 40) -> bytes:
    """A gzipped tar of incompressible members (so a cut anywhere lands inside the data)."""
    import io
    import random
    import tarfile

    rng, buf = random.Random(0), io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for i in range(members):
            data = rng.randbytes(2000)
            info = tarfile.TarInfo(f"set/{i}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


ARCHIVE = _tar_gz()


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_first_download_without_length_is_not_pinned(server, tmp_path, pins, cut):
    server.content = ARCHIVE[: int(len(ARCHIVE) * cut)]  # the connection dropped; no length promised
    res = Resource("set.tar.gz", (server("nolength", "set.tar.gz"),))
    with pytest.raises(DownloadError, match="truncated or malformed.*refusing to pin") as info:
        _fetch(res, tmp_path / "dl", pins, retries=1)
    assert server.requests["/nolength/set.tar.gz"] == 2  # over HTTP: retried, as a dropped connection
    assert str(tmp_path) not in str(info.value)  # names the download, not the temporary file
    _assert_empty(tmp_path / "dl")
    assert not pins.path.exists()

    server.content = ARCHIVE  # the next, whole download is the one pinned
    _fetch(res, tmp_path / "dl", pins)
    assert pins.get("toy", "set.tar.gz") == hashlib.sha256(ARCHIVE).hexdigest()


def test_truncated_local_file_is_refused_once_and_not_pinned(tmp_path, pins):
    mirror = tmp_path / "mirror" / "set.tar.gz"
    mirror.parent.mkdir()
    mirror.write_bytes(ARCHIVE[:-100])
    res = Resource("set.tar.gz", (mirror.as_uri(),))
    with pytest.raises(DownloadError, match="refusing to pin") as info:
        _fetch(res, tmp_path / "dl", pins)
    assert len(info.value.failures) == 1 and "attempts" not in info.value.failures[0][1]  # not retried
    _assert_empty(tmp_path / "dl")
    assert not pins.path.exists()
    mirror.write_bytes(ARCHIVE)
    assert _fetch(res, tmp_path / "dl", pins).read_bytes() == ARCHIVE
    assert pins.get("toy", "set.tar.gz") == hashlib.sha256(ARCHIVE).hexdigest()


def test_unverifiable_first_download_is_not_pinned(server, tmp_path, pins):
    res = Resource("data.bin", (server("ok"),))  # no checksum, no size, no format to read through
    with pytest.raises(DownloadError, match="is whole.*add its size or sha256") as info:
        _fetch(res, tmp_path / "dl", pins)
    assert server.requests["/ok/data.bin"] == 1 and "toy" in str(info.value)
    _assert_empty(tmp_path / "dl")
    assert not pins.path.exists()


def test_mismatch_with_a_pin_says_how_to_repin(server, tmp_path, pins):
    bad = hashlib.sha256(ARCHIVE[:1000]).hexdigest()
    pins.pin("toy", "set.tar.gz", bad)  # e.g. pinned by a bad first download of an older release
    server.content = ARCHIVE
    res = Resource("set.tar.gz", (server("ok", "set.tar.gz"),))
    with pytest.raises(DownloadError) as info:
        _fetch(res, tmp_path / "dl", pins)
    msg = str(info.value)
    assert f"sha256 mismatch: expected {bad}" in msg and "none is published" in msg
    assert f"{pins.path} under the key 'toy/set.tar.gz'" in msg
    assert "delete the key 'toy/set.tar.gz'" in msg and "verify it" in msg
    _assert_empty(tmp_path / "dl")


def test_pin_never_overwritten(pins):
    pins.pin("toy", "a.bin", SHA256)
    pins.pin("toy", "a.bin", SHA256.upper())  # the same pin again: fine
    pins.pin("toy", "b.bin", MD5 * 2)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        pins.pin("toy", "a.bin", MD5 * 2)
    with pytest.raises(ValueError, match="not a sha256"):
        pins.pin("toy", "c.bin", MD5)
    text = pins.path.read_text()
    assert text.index("toy/a.bin") < text.index("toy/b.bin")  # sorted keys
    assert PinnedChecksums(pins.path).get("toy", "a.bin") == SHA256


def test_file_url(tmp_path, pins):
    mirror = tmp_path / "mirror" / "data.bin"
    mirror.parent.mkdir()
    mirror.write_bytes(PAYLOAD)
    missing = (tmp_path / "mirror" / "absent.bin").as_uri()
    res = Resource("data.bin", (missing, mirror.as_uri()), sha256=SHA256)
    assert _fetch(res, tmp_path / "dl", pins).read_bytes() == PAYLOAD


def test_invalid_arguments(tmp_path, pins):
    with pytest.raises(ValueError, match="no URLs"):
        _fetch(Resource("data.bin", ()), tmp_path, pins)
    with pytest.raises(ValueError, match="retries"):
        _fetch(Resource("data.bin", ("file:///x",)), tmp_path, pins, retries=-1)


def test_trickling_server_fails_the_minimum_rate(server, tmp_path, pins):
    import time

    res = Resource("data.bin", (server("trickle"),), md5=MD5)
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        _fetch(res, tmp_path / "dl", pins, retries=1, min_rate=1000, rate_window=0.6)
    elapsed = time.monotonic() - start
    reason = info.value.failures[0][1]
    assert reason.startswith("too slow: ") and "below the minimum of 1000 B/s averaged over 0.6 s" in reason
    assert "OODFLOW_DOWNLOAD_MIN_RATE" in reason and "OODFLOW_DOWNLOAD_RATE_WINDOW" in reason
    assert "(after 2 attempts)" in reason and server.requests["/trickle/data.bin"] == 2
    assert elapsed < 4, elapsed  # two windows, not the 10 s the server would trickle for
    _assert_empty(tmp_path / "dl")


@pytest.mark.parametrize("route", ["trickle", "slowheaders"])
def test_attempt_deadline(server, tmp_path, pins, route):
    import time

    res = Resource("data.bin", (server(route),), md5=MD5)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="the deadline of 0.8 s per attempt passed") as info:
        _fetch(res, tmp_path / "dl", pins, retries=0, deadline=0.8, min_rate=0)
    assert time.monotonic() - start < 3
    assert "OODFLOW_DOWNLOAD_DEADLINE" in str(info.value)
    _assert_empty(tmp_path / "dl")


def test_pace_from_the_environment(server, tmp_path, pins, monkeypatch):
    from oodflow.download import DEFAULT_DEADLINE, DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW, Pace

    assert Pace.resolve({}) == Pace(DEFAULT_DEADLINE, DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW)
    assert (DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW) == (10 * 1024, 60)
    env = {"OODFLOW_DOWNLOAD_MIN_RATE": "1000", "OODFLOW_DOWNLOAD_RATE_WINDOW": "0.6"}
    assert Pace.resolve(env) == Pace(DEFAULT_DEADLINE, 1000, 0.6)
    assert Pace.resolve(env, min_rate=5) == Pace(DEFAULT_DEADLINE, 5, 0.6)  # an argument wins
    with pytest.raises(ValueError, match="OODFLOW_DOWNLOAD_DEADLINE='soon' is not a number"):
        Pace.resolve({"OODFLOW_DOWNLOAD_DEADLINE": "soon"})
    with pytest.raises(ValueError, match="deadline > 0"):
        Pace.resolve({}, deadline=0)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(DownloadError, match="below the minimum of 1000 B/s averaged over 0.6 s"):
        _fetch(Resource("data.bin", (server("trickle"),), md5=MD5), tmp_path / "dl", pins, retries=0)


@pytest.mark.parametrize("url", ["htp://127.0.0.1:9/data.bin", "127.0.0.1/data.bin", "gopher://x/data.bin"])
def test_unknown_url_scheme_is_permanent(server, tmp_path, pins, url):
    res = Resource("data.bin", (url, server("ok")), md5=MD5)
    assert _fetch(res, tmp_path, pins, retries=3, backoff=10).read_bytes() == PAYLOAD  # no backoff waited
    with pytest.raises(DownloadError) as info:
        _fetch(Resource("data.bin", (url,), md5=MD5), tmp_path / "dl", pins, retries=3, backoff=10)
    ((failed, reason),) = info.value.failures
    assert failed == url and reason.startswith("unusable URL: unknown scheme") and "attempt" not in reason
    assert "http://, https://, file://" in reason


# ------------------------------------------------------------------------------- resumed transfers
@pytest.mark.parametrize("route", ["drop", "droprange200"])
def test_a_dropped_transfer_resumes_with_a_range_request(server, tmp_path, pins, route):
    """Issue 22 item 6: the retry asks for the rest (``Range: bytes=N-``, ``If-Range`` the ETag); a
    206 is appended, a server that ignores the range (200) restarts the file cleanly."""
    res = Resource("data.bin", (server(route),), sha256=SHA256)
    path = _fetch(res, tmp_path / "dl", pins)
    assert path.read_bytes() == PAYLOAD and sorted(p.name for p in path.parent.iterdir()) == ["data.bin"]
    first, second = server.headers
    assert "Range" not in first
    assert second["Range"] == f"bytes={3 * len(PAYLOAD) // 8}-" and second["If-Range"] == '"v1"'
    assert server.requests[f"/{route}/data.bin"] == 2


def test_a_resumed_file_that_does_not_verify_is_downloaded_again_from_zero(
    server, tmp_path, pins, monkeypatch
):
    """The upstream file changed between two attempts without changing its ETag: the joined file
    fails its checksum, so the next attempt asks for no range and gets the whole (new) file."""
    import oodflow.download as download

    new = b"new " + PAYLOAD[4:]
    res = Resource("data.bin", (server("drop"),), sha256=hashlib.sha256(new).hexdigest())
    real, calls = download._transfer, []

    def transfer(*args, **kwargs):  # from the second attempt on, the server holds the new version
        calls.append(1)
        if len(calls) == 2:
            server.content = new
        return real(*args, **kwargs)

    monkeypatch.setattr(download, "_transfer", transfer)
    assert _fetch(res, tmp_path / "dl", pins).read_bytes() == new
    assert [h.get("Range") for h in server.headers] == [None, f"bytes={3 * len(PAYLOAD) // 8}-", None]


def test_a_failed_urls_bytes_are_not_resumed_at_the_next_url(server, tmp_path, pins):
    """A failed URL's bytes are not resumed at the next one (a mirror may hold another file)."""
    urls = (server("truncated", "a.bin"), server("ok", "b.bin"))
    res = Resource("data.bin", urls, sha256=SHA256)
    assert _fetch(res, tmp_path / "dl", pins, retries=0).read_bytes() == PAYLOAD
    assert [h.get("Range") for h in server.headers] == [None, None]

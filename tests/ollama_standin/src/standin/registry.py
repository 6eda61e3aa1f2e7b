"""Pulling models over the Docker-registry-style protocol Ollama uses.

GET  <scheme>://<host>/v2/<ns>/<model>/manifests/<tag>
HEAD <scheme>://<host>/v2/<ns>/<model>/blobs/sha256:<hex>   (size)
GET  .../blobs/sha256:<hex>   (direct URL: a redirect to another host, or a Location header)
GET  <direct URL> with Range: bytes=a-b, resumable through <blob>-partial-N part files.

Errors carry the text real Ollama (a Go program) prints for the same failure.
"""

import gzip
import hashlib
import json
import os
import random
import socket
import threading
import time
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

from . import build_info, names
from .store import Store

Progress = Callable[[Dict[str, Any]], None]

MIN_PART = 100 * 1000 * 1000
MAX_PART = 1000 * 1000 * 1000
NUM_PARTS = 16
MAX_RETRIES = 6
TICK_SECONDS = 0.06
DIRECT_URL_DEADLINE = 30.0
MAX_REDIRECTS = 10

_blob_locks: Dict[str, threading.Lock] = {}
_blob_locks_guard = threading.Lock()


class PullError(Exception):
    """An error whose str() is what real Ollama reports."""


class NotFound(PullError):
    def __init__(self) -> None:
        super().__init__("file does not exist")


def _nameserver() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    addr = parts[1]
                    return ("[%s]:53" % addr) if ":" in addr else addr + ":53"
    except OSError:
        pass
    return "127.0.0.1:53"


def _dial(host: str, port: int, timeout: float) -> socket.socket:
    """Connect like Go's net.Dial, failing with Go's error text."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            reason = "no such host"
        else:
            reason = "server misbehaving"
        raise PullError("dial tcp: lookup %s on %s: %s" % (host, _nameserver(), reason)) from None
    last = ""
    for family, stype, proto, _canon, addr in infos:
        shown = ("[%s]:%d" % addr[:2]) if family == socket.AF_INET6 else "%s:%d" % addr[:2]
        sock = socket.socket(family, stype, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            return sock
        except socket.timeout:
            last = "dial tcp %s: i/o timeout" % shown
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            last = "dial tcp %s: connect: %s" % (shown, reason)
        sock.close()
    raise PullError(last or "dial tcp: no addresses")


def open_request(method: str, url: str, headers: Dict[str, str], body: Optional[bytes] = None) -> HTTPResponse:
    """One HTTP exchange (no redirects); connection failures raise PullError with Go's url.Error text."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    try:
        sock = _dial(host, port, 30.0)
        if parts.scheme == "https":
            import ssl  # only needed for https registries; keeps CLI start-up light

            conn: HTTPConnection = HTTPSConnection(host, port, timeout=30.0)
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            except ssl.SSLError as exc:
                raise PullError("tls: %s" % str(exc.reason or exc).lower()) from None
        else:
            conn = HTTPConnection(host, port, timeout=30.0)
        conn.sock = sock
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        if method != "HEAD" and not any(k.lower() in ("range", "accept-encoding") for k in headers):
            # Go's transport asks for gzip by itself (and undoes it, see read_body).
            conn.putheader("Accept-Encoding", "gzip")
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return conn.getresponse()
    except PullError as exc:
        raise PullError('%s "%s": %s' % (method.title(), url, exc)) from None
    except (OSError, ValueError) as exc:
        raise PullError('%s "%s": %s' % (method.title(), url, exc)) from None


def read_body(resp: HTTPResponse) -> bytes:
    """The whole body, gunzipped when the server used the gzip that Go's transport asked for."""
    data = resp.read()
    if (resp.getheader("Content-Encoding") or "").strip().lower() == "gzip":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PullError("gzip: invalid header" if isinstance(exc, gzip.BadGzipFile) else "unexpected EOF") from None
    return data


def go_json_error(raw: bytes) -> str:
    """The text of Go's json.Unmarshal error for a body that is not JSON (the common cases)."""
    text = raw.decode("utf-8", "replace").lstrip(" \t\r\n")
    if not text:
        return "unexpected end of JSON input"
    first = text[0]
    if first not in '{["-0123456789tfn':
        shown = "\\'" if first == "'" else first
        return "invalid character '%s' looking for beginning of value" % shown
    return "invalid character in manifest"


def _user_agent() -> str:
    return "ollama/%s (amd64 linux) Go/go1.24.0 [ollama stand-in]" % build_info.VERSION


def request(method: str, url: str, headers: Optional[Dict[str, str]] = None, same_host_only: bool = False) -> Tuple[HTTPResponse, str]:
    """Send a request following redirects like Go's http.Client.

    With same_host_only, redirects to another host name are not followed and the
    redirect response itself is returned (Ollama's CheckRedirect for blob URLs).
    Returns (response, final URL).
    """
    hdrs = {"User-Agent": _user_agent()}
    hdrs.update(headers or {})
    origin = urlsplit(url).hostname
    for _ in range(MAX_REDIRECTS + 1):
        resp = open_request(method, url, hdrs)
        location = resp.getheader("Location")
        if resp.status in (301, 302, 303, 307, 308) and location:
            target = urljoin(url, location)
            if same_host_only and urlsplit(target).hostname != origin:
                return resp, url
            resp.close()
            url = target
            # Go keeps GET and HEAD on 301/302/303 (other methods become GET) and every method on 307/308.
            if resp.status in (301, 302, 303) and method not in ("GET", "HEAD"):
                method = "GET"
            continue
        return resp, url
    raise PullError('%s "%s": stopped after 10 redirects' % (method.title(), url))


def request_with_retry(method: str, url: str, headers: Optional[Dict[str, str]] = None) -> HTTPResponse:
    """makeRequestWithRetry: 404 -> 'file does not exist', >= 400 -> '<code>: <body>'."""
    resp, _ = request(method, url, headers)
    return check_status(resp)


def check_status(resp: HTTPResponse) -> HTTPResponse:
    """The status rules of makeRequestWithRetry, for a response already received."""
    if resp.status == 401:
        resp.close()
        raise PullError("unauthorized: access denied")
    if resp.status == 404:
        resp.close()
        raise NotFound()
    if resp.status >= 400:
        body = resp.read().decode("utf-8", "replace")
        raise PullError("%d: %s" % (resp.status, body))
    return resp


def _blob_lock(digest: str) -> threading.Lock:
    with _blob_locks_guard:
        return _blob_locks.setdefault(digest, threading.Lock())


class _Download:
    """One blob download with part files, like server/download.go."""

    def __init__(self, store: Store, digest: str, url: str, progress: Progress) -> None:
        self.store = store
        self.digest = digest
        self.url = url
        self.progress = progress
        self.path = store.blob_path(digest)
        self.parts: List[Dict[str, int]] = []
        self.total = 0
        self.last_tick = time.monotonic()

    def part_name(self, n: int) -> str:
        return "%s-partial-%d" % (self.path, n)

    def write_part(self, part: Dict[str, int]) -> None:
        with open(self.part_name(part["N"]), "w") as f:
            f.write(json.dumps(part, separators=(",", ":")) + "\n")

    def prepare(self) -> None:
        directory = os.path.dirname(self.path)
        prefix = os.path.basename(self.path) + "-partial-"
        for fname in sorted(os.listdir(directory)):
            if fname.startswith(prefix) and fname[len(prefix) :].isdigit():
                with open(os.path.join(directory, fname)) as f:
                    self.parts.append(json.load(f))
        self.parts.sort(key=lambda p: p["N"])
        if self.parts:
            self.total = sum(p["Size"] for p in self.parts)
            return
        resp = request_with_retry("HEAD", self.url)
        resp.close()
        self.total = int(resp.getheader("Content-Length") or 0)
        size = min(max(self.total // NUM_PARTS, MIN_PART), MAX_PART)
        offset = 0
        while offset < self.total:
            size = min(size, self.total - offset)
            part = {"N": len(self.parts), "Offset": offset, "Size": size, "Completed": 0}
            self.write_part(part)
            self.parts.append(part)
            offset += size

    def completed(self) -> int:
        return sum(p["Completed"] for p in self.parts)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_tick >= TICK_SECONDS:
            self.last_tick = now
            self.progress(
                {"status": "pulling %s" % self.digest[7:19], "digest": self.digest, "total": self.total, "completed": self.completed()}
            )

    def direct_url(self) -> str:
        """The URL the parts are read from, resolved once per blob like Ollama's downloader.

        A GET of the registry's blob URL, following redirects only while the host name stays the
        same (the port may change). Any failure of that request, an HTTP error status included (a
        404 too), is retried with a growing randomised back-off until 30 seconds have passed, and
        then the pull fails with "context deadline exceeded". A 200 or 307 must carry a Location
        (resolved against the URL last asked); any other status fails at once.
        """
        deadline = time.monotonic() + DIRECT_URL_DEADLINE
        tries = 0
        while True:
            try:
                resp, final = request("GET", self.url, same_host_only=True)
                check_status(resp)
            except PullError:
                tries += 1
                delay = min(tries * tries * 0.01, 10.0) * random.uniform(0.5, 1.5)
                left = deadline - time.monotonic()
                if delay >= left:
                    time.sleep(max(left, 0.0))
                    raise PullError("context deadline exceeded") from None
                time.sleep(delay)
                continue
            resp.close()
            if resp.status not in (200, 307):
                raise PullError("unexpected status code %d" % resp.status)
            location = resp.getheader("Location")
            if not location:
                raise PullError("http: no Location header in response")
            return urljoin(final, location)

    def run(self) -> None:
        partial = self.path + "-partial"
        with open(partial, "ab"):
            pass
        os.truncate(partial, self.total)
        url = self.direct_url()
        with open(partial, "r+b") as out:
            for part in self.parts:
                self._download_part(out, url, part)
        for part in self.parts:
            os.remove(self.part_name(part["N"]))
        os.replace(partial, self.path)

    def _download_part(self, out, url: str, part: Dict[str, int]) -> None:
        err: Optional[Exception] = None
        for attempt in range(MAX_RETRIES):
            if part["Completed"] >= part["Size"]:
                return
            start = part["Offset"] + part["Completed"]
            stop = part["Offset"] + part["Size"] - 1
            try:
                resp, _ = request("GET", url, {"Range": "bytes=%d-%d" % (start, stop)})
                out.seek(start)
                remaining = part["Size"] - part["Completed"]
                while remaining > 0:
                    chunk = resp.read(min(1 << 20, remaining))
                    if not chunk:
                        break
                    out.write(chunk)
                    part["Completed"] += len(chunk)
                    remaining -= len(chunk)
                    self.tick()
                resp.close()
                self.write_part(part)
                if remaining > 0:
                    raise PullError("unexpected EOF")
                return
            except (PullError, OSError) as exc:
                self.write_part(part)
                err = exc
                time.sleep(2**attempt)
        raise PullError("max retries exceeded: %s" % err)


def download_blob(store: Store, name: names.Name, digest: str, base: str, progress: Progress) -> bool:
    """Returns True on a cache hit (blob already present)."""
    if not digest:
        raise PullError("%s: digest is empty" % name.namespace_model())
    path = store.blob_path(digest)
    with _blob_lock(digest):
        if os.path.exists(path):
            size = os.path.getsize(path)
            progress({"status": "pulling %s" % digest[7:19], "digest": digest, "total": size, "completed": size})
            return True
        url = "%s/v2/%s/blobs/%s" % (base, name.namespace_model(), digest)
        download = _Download(store, digest, url, progress)
        download.prepare()
        download.run()
    return False


def verify_blob(store: Store, digest: str) -> None:
    sha = hashlib.sha256()
    path = store.blob_path(digest)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    got = "sha256:" + sha.hexdigest()
    if got != digest:
        os.remove(path)
        raise PullError("digest mismatch, file must be downloaded again: want %s, got %s" % (digest, got))


def pull(store: Store, name: names.Name, insecure: bool, progress: Progress) -> None:
    """PullModel."""
    old_digests = set()
    try:
        old, _raw, _mtime = store.read_manifest(name)
        old_digests = {layer["digest"] for layer in (old.get("layers") or [])}
        if old.get("config", {}).get("digest"):
            old_digests.add(old["config"]["digest"])
    except (OSError, ValueError):
        pass
    if name.scheme == "http" and not insecure:
        raise PullError("insecure protocol http")
    progress({"status": "pulling manifest"})
    scheme = "http" if insecure else name.scheme
    base = "%s://%s" % (scheme, name.host)
    url = "%s/v2/%s/manifests/%s" % (base, name.namespace_model(), name.tag)
    try:
        resp = request_with_retry("GET", url, {"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        raw = read_body(resp)
        manifest = json.loads(raw)
    except PullError as exc:
        raise PullError("pull model manifest: %s" % exc) from None
    except ValueError:
        raise PullError("pull model manifest: %s" % go_json_error(raw)) from None
    layers = list(manifest.get("layers") or [])
    if manifest.get("config", {}).get("digest"):
        layers.append(manifest["config"])
    skip_verify: Dict[str, bool] = {}
    for layer in layers:
        hit = download_blob(store, name, layer.get("digest", ""), base, progress)
        skip_verify[layer["digest"]] = skip_verify.get(layer["digest"], True) and hit
    progress({"status": "verifying sha256 digest"})
    for layer in layers:
        if not skip_verify[layer["digest"]]:
            verify_blob(store, layer["digest"])
    progress({"status": "writing manifest"})
    store.write_manifest_bytes(name, raw)
    unused = old_digests - {layer["digest"] for layer in layers}
    if unused and os.environ.get("OLLAMA_NOPRUNE", "") in ("", "0", "false", "False"):
        progress({"status": "removing unused layers"})
        store.remove_unused(unused)
    progress({"status": "success"})
